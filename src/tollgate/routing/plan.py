"""What routing decides for one request before its first attempt (``Plan``), and what the
attempt that answered was (``Outcome``). Imports ``config`` and ``errors`` only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from tollgate.config import Deployment
from tollgate.errors import GatewayError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Plan:
    """What routing decided for one request before the first attempt."""

    model: str  # as the client named it
    group: str  # the model group it resolved to
    estimated_tokens: int
    stream: bool
    num_retries: int  # the operator's, or the request's (which may only lower the operator's)
    retries_from_request: bool
    priority: int | None
    fallbacks: tuple[str, ...]  # generic chain (request hint, group entry, "*", default_fallbacks)
    context_window_fallbacks: tuple[str, ...]
    content_policy_fallbacks: tuple[str, ...]
    request_timeout: float | None  # per-request timeout hint
    default_timeout: float
    default_stream_timeout: float

    def timeout_for(self, deployment: Deployment) -> float:
        """Seconds one attempt on ``deployment`` may take (to the first byte, for a stream). A
        request's own ``timeout`` may shorten the operator's setting, never lengthen it."""
        if self.stream and deployment.stream_timeout is not None:
            configured = deployment.stream_timeout
        elif deployment.timeout is not None:
            configured = deployment.timeout
        else:
            configured = self.default_stream_timeout if self.stream else self.default_timeout
        if self.request_timeout is not None:
            return min(self.request_timeout, configured)
        return configured

    def chain_for(self, err: GatewayError) -> tuple[str, ...]:
        if err.fallback == "none":
            return ()
        if err.fallback == "context_window" and self.context_window_fallbacks:
            return self.context_window_fallbacks
        if err.fallback == "content_policy" and self.content_policy_fallbacks:
            return self.content_policy_fallbacks
        return self.fallbacks


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    value: T
    deployment: Deployment
    model_group: str
    attempts: int


def fallback_map(*sources: Sequence[Mapping[str, Sequence[str]]]) -> dict[str, tuple[str, ...]]:
    """LiteLLM's ``[{group: [fallback, …]}, …]`` lists as one map; the first source wins."""
    out: dict[str, tuple[str, ...]] = {}
    for source in sources:
        for entry in source:
            for name, chain in entry.items():
                out.setdefault(name, tuple(chain))
    return out
