"""What Anthropic's Messages API answers with, both directions: the ``message`` object, error
bodies and the stop-reason and usage mappings that whole and streamed answers share.

``anthropic_messages`` is the dialect module and re-exports the public functions here; the SSE
streams are in ``anthropic_stream``. Imports only ``canonical``, ``errors`` and ``framing``.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from tollgate.canonical import ChatResponse, FinishReason, Usage
from tollgate.dialects.anthropic.content import output_block, parse_output_block
from tollgate.errors import (
    ContextWindowExceeded,
    GatewayError,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamNotFound,
    UpstreamPermissionDenied,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
    looks_like_context_window,
    retry_after_from,
    upstream_error_for_status,
)

PROVIDER = "anthropic"

FINISH_TO_STOP: Mapping[FinishReason, str] = {
    "end_turn": "end_turn",
    "stop_sequence": "stop_sequence",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",
}

STOP_TO_FINISH: Mapping[str, FinishReason] = {
    "end_turn": "end_turn",
    "stop_sequence": "stop_sequence",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
    "refusal": "content_filter",
    # A paused server-tool turn is a complete answer the client may continue.
    "pause_turn": "end_turn",
    "model_context_window_exceeded": "max_tokens",
}

_ERROR_TYPES: Mapping[str, str] = {
    "invalid_request": "invalid_request_error",
    "context_window": "invalid_request_error",
    "content_policy": "invalid_request_error",
    "budget": "invalid_request_error",
    "not_found": "not_found_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "rate_limit": "rate_limit_error",
    "overloaded": "overloaded_error",
    "unavailable": "overloaded_error",
    # The SDK picks its exception class by HTTP status, so a generic type is enough here.
    "timeout": "api_error",
}

# The status Anthropic sends with each error type; used for errors that arrive inside a stream.
ERROR_TYPE_STATUS: Mapping[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def error_type(err: GatewayError) -> str:
    return _ERROR_TYPES.get(err.kind, "api_error")


def error_body(err: GatewayError) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": error_type(err), "message": err.message}})


def message_id(canonical_id: str) -> str:
    return canonical_id if canonical_id.startswith("msg_") else "msg_" + canonical_id


def usage_dict(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
    }


def parse_usage(raw: object, base: Usage) -> Usage:
    """Usage from an Anthropic ``usage`` object; fields it leaves out or nulls keep ``base``'s."""
    if not isinstance(raw, dict):
        return base

    def pick(key: str, default: int) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    return Usage(
        input_tokens=pick("input_tokens", base.input_tokens),
        output_tokens=pick("output_tokens", base.output_tokens),
        cache_read_tokens=pick("cache_read_input_tokens", base.cache_read_tokens),
        cache_write_tokens=pick("cache_creation_input_tokens", base.cache_write_tokens),
        reasoning_tokens=base.reasoning_tokens,
    )


def render_response(response: ChatResponse) -> bytes:
    content = [block for part in response.parts if (block := output_block(part)) is not None]
    stop_reason = FINISH_TO_STOP[response.finish_reason]
    return orjson.dumps(
        {
            "id": message_id(response.id),
            "type": "message",
            "role": "assistant",
            "model": response.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": response.stop_sequence if stop_reason == "stop_sequence" else None,
            "usage": usage_dict(response.usage),
        }
    )


def render_error(err: GatewayError) -> tuple[int, bytes, Mapping[str, str]]:
    return err.status, error_body(err), err.response_headers()


def parse_response(body: bytes) -> ChatResponse:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UpstreamError("upstream returned a body that is not JSON", provider=PROVIDER) from exc
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise UpstreamError("upstream returned an unexpected message shape", provider=PROVIDER)
    parts = tuple(part for block in data["content"] if (part := parse_output_block(block)) is not None)
    stop_reason = data.get("stop_reason")
    stop_sequence = data.get("stop_sequence")
    return ChatResponse(
        id=str(data.get("id", "")),
        model=str(data.get("model", "")),
        parts=parts,
        finish_reason=STOP_TO_FINISH.get(stop_reason, "end_turn")
        if isinstance(stop_reason, str)
        else "end_turn",
        usage=parse_usage(data.get("usage"), Usage()),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
    )


_ERRORS_BY_TYPE: Mapping[str, type[UpstreamError]] = {
    "invalid_request_error": UpstreamBadRequest,
    "request_too_large": UpstreamBadRequest,
    "authentication_error": UpstreamAuthError,
    # An account out of credit: another deployment may still serve the request.
    "billing_error": UpstreamPermissionDenied,
    "permission_error": UpstreamPermissionDenied,
    "not_found_error": UpstreamNotFound,
    "rate_limit_error": UpstreamRateLimited,
    "overloaded_error": UpstreamUnavailable,
    "timeout_error": UpstreamTimeout,
    "api_error": UpstreamError,
}


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    retry_after = retry_after_from(headers)
    kind: object = None
    message = body.decode("utf-8", errors="replace")[:2000] or f"upstream answered HTTP {status}"
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        kind = data["error"].get("type")
        if isinstance(data["error"].get("message"), str):
            message = data["error"]["message"]
    if kind in ("invalid_request_error", "request_too_large") and looks_like_context_window(message):
        return ContextWindowExceeded(message)
    cls = _ERRORS_BY_TYPE.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return upstream_error_for_status(status, message, provider=PROVIDER, retry_after=retry_after)
    err = cls(message, provider=PROVIDER, retry_after=retry_after)
    if cls is UpstreamError and 500 <= status < 600:
        err.status = status
    return err
