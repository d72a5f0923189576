"""Bedrock errors both ways: the ``x-amzn-ErrorType`` and status a client of the gateway gets
for a gateway error, the exception members a ConverseStream may carry, and the most specific
``GatewayError`` for an AWS error answer or stream exception.

``converse`` re-exports ``render_error`` and ``parse_error``. Imports ``canonical``, ``errors`` and
``framing`` only.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

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

PROVIDER = "bedrock"

# kind → (x-amzn-ErrorType, HTTP status); None keeps the error's own status.
ERROR_TYPES: Mapping[str, tuple[str, int | None]] = {
    "invalid_request": ("ValidationException", 400),
    "context_window": ("ValidationException", 400),
    "content_policy": ("ValidationException", 400),
    "budget": ("ValidationException", None),
    "too_large": ("ValidationException", 413),
    "not_found": ("ResourceNotFoundException", 404),
    "authentication": ("UnrecognizedClientException", None),
    "permission": ("AccessDeniedException", 403),
    "rate_limit": ("ThrottlingException", 429),
    "overloaded": ("ServiceUnavailableException", 503),
    "unavailable": ("ServiceUnavailableException", 503),
    "timeout": ("ModelTimeoutException", 408),
    "api_error": ("InternalServerException", 500),
    "config": ("InternalServerException", 500),
}

# kind → the ConverseStreamOutput exception member a stream may carry.
STREAM_EXCEPTIONS: Mapping[str, str] = {
    "rate_limit": "throttlingException",
    "overloaded": "serviceUnavailableException",
    "unavailable": "serviceUnavailableException",
    "timeout": "modelStreamErrorException",
    "api_error": "internalServerException",
    "config": "internalServerException",
}

_AUTH_TYPES = frozenset(
    {
        "UnrecognizedClientException",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "InvalidClientTokenId",
    }
)


def render_error(err: GatewayError) -> tuple[int, bytes, Mapping[str, str]]:
    error_type, status = ERROR_TYPES.get(err.kind, ("InternalServerException", 500))
    headers = {**err.response_headers(), "x-amzn-ErrorType": error_type, "content-type": "application/json"}
    body = orjson.dumps({"message": err.message, **err.details})
    return status if status is not None else err.status, body, headers


def error_from_aws(
    error_type: str, message: str, status: int, *, retry_after: float | None = None
) -> GatewayError:
    """The most specific error for an AWS error type (``ThrottlingException``, or a stream's
    ``throttlingException``; namespaces and ``:suffixes`` are stripped)."""
    name = error_type.split(":", 1)[0].rsplit("#", 1)[-1].strip()
    name = name[:1].upper() + name[1:]
    cls: type[UpstreamError]
    if name in ("ThrottlingException", "ServiceQuotaExceededException", "TooManyRequestsException"):
        cls = UpstreamRateLimited
    elif name in ("ServiceUnavailableException", "ModelNotReadyException"):
        cls = UpstreamUnavailable
    elif name == "ModelTimeoutException":
        cls = UpstreamTimeout
    elif name == "AccessDeniedException":
        cls = UpstreamPermissionDenied
    elif name in _AUTH_TYPES:
        cls = UpstreamAuthError
    elif name == "ResourceNotFoundException":
        cls = UpstreamNotFound
    elif name == "ValidationException":
        if looks_like_context_window(message):
            return ContextWindowExceeded(message)
        cls = UpstreamBadRequest
    elif name == "InternalServerException":
        return UpstreamError(message, provider=PROVIDER, status=500, retry_after=retry_after)
    elif name in ("ModelStreamErrorException", "ModelErrorException"):
        cls = UpstreamError
    else:
        return upstream_error_for_status(status, message, provider=PROVIDER, retry_after=retry_after)
    return cls(message, provider=PROVIDER, retry_after=retry_after)


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    """An upstream error answer: the type from ``x-amzn-ErrorType`` (else the body's ``__type``),
    the text from the body's ``message``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    message = data.get("message", data.get("Message"))
    if not isinstance(message, str):
        message = body.decode("utf-8", errors="replace").strip() or f"Bedrock returned HTTP {status}"
    error_type = lowered.get("x-amzn-errortype") or data.get("__type") or data.get("code") or ""
    retry_after = retry_after_from(headers)
    return error_from_aws(str(error_type), message, status, retry_after=retry_after)

