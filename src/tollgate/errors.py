"""The gateway's error tree. Every failure the gateway reports is one of these.

Each class knows its HTTP status, a dialect-neutral ``kind`` (which every dialect's
``render_error`` maps to its own error type names), and what routing may do about it::

    GatewayError                      kind             status  retry  fallback
    ├── InvalidRequest                invalid_request  400
    │   ├── UnknownModel              not_found        400
    │   ├── ContextWindowExceeded     context_window   400            context_window
    │   ├── ContentPolicyViolation    content_policy   400            content_policy
    │   └── GuardrailBlocked          content_policy   400     (a configured guardrail intervened)
    ├── AuthenticationFailed          authentication   401
    ├── PermissionDenied              permission       403
    │   └── ModelAccessDenied         permission       401/403
    ├── NotFound                      not_found        404
    ├── Conflict                      invalid_request  400
    ├── PayloadTooLarge               too_large        413
    ├── BudgetExceeded                budget           400
    ├── RateLimited                   rate_limit       429     (gateway's own limits, never retried)
    ├── ClientDisconnected            api_error        499     (recorded only: nobody is listening)
    ├── ConfigError                   config           —       (start-up only)
    ├── StoreUnavailable              unavailable      503     (the database cannot be reached; retry-after)
    ├── NoDeploymentAvailable         unavailable      503            fallbacks
    ├── GuardrailUnavailable          unavailable      503     (a guardrail service failed, closed)
    └── UpstreamError                 api_error        502     yes    fallbacks
        ├── UpstreamBadRequest        invalid_request  400     no     (no fallback)
        ├── UpstreamAuthError         authentication   401     no     fallbacks
        ├── UpstreamPermissionDenied  permission       403     no     fallbacks
        ├── UpstreamNotFound          not_found        404     no     fallbacks
        ├── UpstreamRateLimited       rate_limit       429     yes    fallbacks
        ├── UpstreamUnavailable       overloaded       503     yes    fallbacks
        ├── UpstreamTimeout           timeout          408     yes    fallbacks
        ├── UpstreamConnectionError   api_error        502     yes    fallbacks
        ├── StreamTruncated           api_error        502     yes    fallbacks
        └── DeploymentMisconfigured   config           500     no     fallbacks

``ContextWindowExceeded`` and ``ContentPolicyViolation`` may come from an upstream too (the
dialects' ``parse_error`` recognise them), so routing can act on them either way. Messages
never contain secrets: callers build them from names and upstream error text only.
``details`` are extra fields every dialect adds to its error body (a guardrail's assessment).
This module imports nothing from tollgate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

ErrorKind = Literal[
    "invalid_request",
    "not_found",
    "context_window",
    "content_policy",
    "authentication",
    "permission",
    "budget",
    "too_large",
    "rate_limit",
    "config",
    "unavailable",
    "api_error",
    "overloaded",
    "timeout",
]

FallbackKind = Literal["none", "any", "context_window", "content_policy"]


class GatewayError(Exception):
    status: int = 500
    kind: ErrorKind = "api_error"
    retryable: bool = False
    fallback: FallbackKind = "none"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        param: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
        details: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.param = param
        self.code = code
        self.retry_after = retry_after
        self.headers = headers or {}
        self.details: Mapping[str, object] = details or {}

    def response_headers(self) -> dict[str, str]:
        """The headers every dialect sends with this error: its own, plus ``retry-after`` in
        whole seconds rounded up when it carries a retry hint."""
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers["retry-after"] = str(max(math.ceil(self.retry_after), 0))
        return headers

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status={self.status})"


class InvalidRequest(GatewayError):
    status = 400
    kind: ErrorKind = "invalid_request"


class UnknownModel(InvalidRequest):
    kind: ErrorKind = "not_found"


class ContextWindowExceeded(InvalidRequest):
    kind: ErrorKind = "context_window"
    fallback: FallbackKind = "context_window"


class ContentPolicyViolation(InvalidRequest):
    kind: ErrorKind = "content_policy"
    fallback: FallbackKind = "content_policy"


class GuardrailBlocked(InvalidRequest):
    """A configured guardrail blocked the request or the answer; ``details`` carry its assessment
    (never the blocked text). Raised outside routing, so it never falls back."""

    kind: ErrorKind = "content_policy"


class AuthenticationFailed(GatewayError):
    status = 401
    kind: ErrorKind = "authentication"


class PermissionDenied(GatewayError):
    status = 403
    kind: ErrorKind = "permission"


class ModelAccessDenied(PermissionDenied):
    """The caller may not use the model. Keys get 401 (LiteLLM's status); other levels 403."""


class NotFound(GatewayError):
    status = 404
    kind: ErrorKind = "not_found"


class Conflict(GatewayError):
    status = 400
    kind: ErrorKind = "invalid_request"


class PayloadTooLarge(GatewayError):
    """The request body is larger than ``general_settings.max_request_size_mb`` allows."""

    status = 413
    kind: ErrorKind = "too_large"


class ClientDisconnected(GatewayError):
    """The client went away before its answer was complete. Never rendered: it names the
    spend-log row and metric line of such a request (499, as nginx logs it)."""

    status = 499


class BudgetExceeded(GatewayError):
    status = 400
    kind: ErrorKind = "budget"


class RateLimited(GatewayError):
    status = 429
    kind: ErrorKind = "rate_limit"


class ConfigError(GatewayError):
    kind: ErrorKind = "config"


class StoreUnavailable(GatewayError):
    """The database cannot be reached (down, unreachable, refusing connections, too slow).

    At start-up the CLI prints it as one line and exits 2; at run time the caller gets a 503 with
    ``retry-after`` (``RETRY_AFTER`` unless given). The message never names the database: a
    client must not learn where it lives; ``detail`` (for logs and the CLI) does."""

    status = 503
    kind: ErrorKind = "unavailable"
    RETRY_AFTER = 5.0

    def __init__(self, message: str, *, detail: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=self.RETRY_AFTER if retry_after is None else retry_after)
        self.detail = detail or message


class NoDeploymentAvailable(GatewayError):
    status = 503
    kind: ErrorKind = "unavailable"
    fallback: FallbackKind = "any"


class GuardrailUnavailable(GatewayError):
    """A guardrail could not give a verdict (its service failed or timed out) and fails closed."""

    status = 503
    kind: ErrorKind = "unavailable"


class UpstreamError(GatewayError):
    """The upstream failed. ``provider`` names it; the message is the upstream's own text."""

    status = 502
    kind: ErrorKind = "api_error"
    retryable = True
    fallback: FallbackKind = "any"

    def __init__(self, message: str, *, provider: str | None = None, **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.provider = provider


class UpstreamBadRequest(UpstreamError):
    status = 400
    kind: ErrorKind = "invalid_request"
    retryable = False
    fallback: FallbackKind = "none"


class UpstreamAuthError(UpstreamError):
    status = 401
    kind: ErrorKind = "authentication"
    retryable = False


class UpstreamPermissionDenied(UpstreamError):
    status = 403
    kind: ErrorKind = "permission"
    retryable = False


class UpstreamNotFound(UpstreamError):
    status = 404
    kind: ErrorKind = "not_found"
    retryable = False


class UpstreamRateLimited(UpstreamError):
    status = 429
    kind: ErrorKind = "rate_limit"


class UpstreamUnavailable(UpstreamError):
    status = 503
    kind: ErrorKind = "overloaded"


class UpstreamTimeout(UpstreamError):
    status = 408  # LiteLLM's Timeout status, which clients of the proxy already handle
    kind: ErrorKind = "timeout"


class UpstreamConnectionError(UpstreamError):
    status = 502
    kind: ErrorKind = "api_error"


class StreamTruncated(UpstreamError):
    """The upstream's stream ended cleanly but without its end marker (``[DONE]``,
    ``message_stop``, ``messageStop``): the answer is incomplete, whatever it said so far."""

    status = 502
    kind: ErrorKind = "api_error"


class DeploymentMisconfigured(UpstreamError):
    """The gateway's own settings for a deployment cannot work (e.g. no AWS credentials): an
    operator's problem, never the caller's, so a 5xx naming the deployment; another model group
    may still answer."""

    status = 500
    kind: ErrorKind = "config"
    retryable = False


def upstream_error_for_status(
    status: int, message: str, *, provider: str | None = None, retry_after: float | None = None
) -> GatewayError:
    """The error class for an upstream HTTP status when the body says nothing more specific."""
    cls: type[UpstreamError]
    if status == 400 or status == 422:
        cls = UpstreamBadRequest
    elif status == 401:
        cls = UpstreamAuthError
    elif status == 403:
        cls = UpstreamPermissionDenied
    elif status == 404:
        cls = UpstreamNotFound
    elif status == 408 or status == 504:
        cls = UpstreamTimeout
    elif status == 429:
        cls = UpstreamRateLimited
    elif status in (500, 502, 503, 529) or status >= 500:
        cls = UpstreamUnavailable if status in (503, 529) else UpstreamError
    else:
        cls = UpstreamBadRequest
    err = cls(message, provider=provider, retry_after=retry_after)
    if cls is UpstreamError:
        err.status = status if 500 <= status < 600 else 502
    return err


def retry_after_from(headers: Mapping[str, str]) -> float | None:
    """An upstream's retry hint in seconds: ``retry-after-ms`` first (as the OpenAI SDK reads
    it), then ``retry-after``; header names in any case; HTTP-date forms are ignored."""
    lowered = {k.lower(): v for k, v in headers.items() if k.lower() in ("retry-after", "retry-after-ms")}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = lowered.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) * scale
        except ValueError:
            continue
        if math.isfinite(value) and value >= 0:
            return value
    return None


_CONTEXT_WINDOW_MARKERS = (
    "context length",
    "context_length_exceeded",
    "context window",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "input is too long",
    "too long for",
    "exceeds the maximum",
    "input too long",
    "max_tokens_exceeded",
)


def looks_like_context_window(message: str) -> bool:
    """True when an upstream 400's text says the input does not fit the model."""
    lowered = message.lower()
    return any(marker in lowered for marker in _CONTEXT_WINDOW_MARKERS)
