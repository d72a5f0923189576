"""OpenAI error bodies, both ways: the ``{"error": {...}}`` a client of the gateway gets for a
``GatewayError``, and the most specific ``GatewayError`` for an upstream's error answer.
Imports ``canonical`` and ``errors`` only.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from tollgate.errors import (
    ContentPolicyViolation,
    ContextWindowExceeded,
    GatewayError,
    looks_like_context_window,
    retry_after_from,
    upstream_error_for_status,
)

_ERROR_TYPES: Mapping[str, str] = {
    "invalid_request": "invalid_request_error",
    "not_found": "not_found_error",
    "context_window": "invalid_request_error",
    "content_policy": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "budget": "budget_exceeded",
    "too_large": "invalid_request_error",
    "rate_limit": "rate_limit_error",
    "timeout": "timeout",
}


_DEFAULT_CODES: Mapping[str, str] = {
    "context_window": "context_length_exceeded",
    "content_policy": "content_policy_violation",
}


def error_object(err: GatewayError) -> dict[str, object]:
    """The ``{"error": {...}}`` body. LiteLLM sends the HTTP status as a string ``code``."""
    kind = err.kind
    if kind == "not_found" and err.status == 400:
        error_type = "invalid_request_error"  # an unknown model name is a bad request in OpenAI
    else:
        error_type = _ERROR_TYPES.get(kind, "api_error")
    code = err.code or _DEFAULT_CODES.get(kind) or str(err.status)
    body = {"message": err.message, "type": error_type, "param": err.param, "code": code}
    return {"error": {**body, **err.details}}


def error_from_payload(status: int, payload: object, raw: bytes, headers: Mapping[str, str]) -> GatewayError:
    """The most specific error for an upstream's ``{"error": ...}`` (or unparseable) body."""
    error = payload.get("error") if isinstance(payload, dict) else None
    message: str | None = None
    code: str | None = None
    param: str | None = None
    if isinstance(error, dict):
        if isinstance(error.get("message"), str):
            message = error["message"]
        raw_code = error.get("code")
        if isinstance(raw_code, str | int) and not isinstance(raw_code, bool):
            code = str(raw_code)
        if isinstance(error.get("param"), str):
            param = error["param"]
    elif isinstance(error, str):
        message = error
    if not message:
        message = raw.decode("utf-8", errors="replace")[:500] or f"upstream returned HTTP {status}"
    retry_after = retry_after_from(headers)
    err: GatewayError
    if code == "context_length_exceeded" or (status == 400 and looks_like_context_window(message)):
        err = ContextWindowExceeded(message, code="context_length_exceeded", param=param)
    elif code in ("content_filter", "content_policy_violation"):
        err = ContentPolicyViolation(message, code=code, param=param)
    else:
        err = upstream_error_for_status(status, message, retry_after=retry_after)
        err.code = code
        err.param = param
    return err


def render_error(err: GatewayError) -> tuple[int, bytes, Mapping[str, str]]:
    return err.status, orjson.dumps(error_object(err)), err.response_headers()


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    try:
        payload: object = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    return error_from_payload(status, payload, body, headers)


