"""Anthropic error bodies, both ways: the ``{"type": "error", "error": {...}}`` a client of the
gateway gets for a ``GatewayError`` (whole answers and in-stream ``error`` events), and the most
specific ``GatewayError`` for an upstream's error answer. Imports ``canonical`` and ``errors`` only.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from tollgate.dialects.anthropic.response import PROVIDER
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

_ERROR_TYPES: Mapping[str, str] = {
    "invalid_request": "invalid_request_error",
    "context_window": "invalid_request_error",
    "content_policy": "invalid_request_error",
    "budget": "invalid_request_error",
    "too_large": "request_too_large",
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
    error = {"type": error_type(err), "message": err.message, **err.details}
    return orjson.dumps({"type": "error", "error": error})


def render_error(err: GatewayError) -> tuple[int, bytes, Mapping[str, str]]:
    return err.status, error_body(err), err.response_headers()


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


