"""What Anthropic's Messages API answers with, both directions: the ``message`` object and the
stop-reason and usage mappings that whole and streamed answers share.
Imports only ``canonical``, ``errors`` and this package.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from tollgate.canonical import ChatResponse, FinishReason, Usage
from tollgate.dialects.anthropic.content import output_block, parse_output_block
from tollgate.errors import (
    UpstreamError,
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
    body: dict[str, object] = {
        "id": message_id(response.id),
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": response.stop_sequence if stop_reason == "stop_sequence" else None,
        "usage": usage_dict(response.usage),
    }
    if response.session_id is not None:
        body["session_id"] = response.session_id  # the gateway's chat-history session
    return orjson.dumps(body)




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




