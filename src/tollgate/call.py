"""The per-request context and the lifecycle contracts both sides of the gateway import.

``Call`` is the typed per-request context handed down the lifecycle (DESIGN.md §2.9). The
protocols say what the gateway needs from admission (``Admission`` → ``Ticket``) and from
accounting (``Accounting``, fed one ``Attempted`` per finished request); ``policy`` and
``accounting`` implement them without importing ``gateway``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from tollgate.auth.principal import Principal
from tollgate.canonical import ChatRequest, EmbeddingRequest, Usage
from tollgate.config import Deployment
from tollgate.errors import GatewayError


@dataclass(frozen=True, slots=True)
class Call:
    principal: Principal
    request: ChatRequest | EmbeddingRequest
    client_format: str  # the ingress dialect name: openai | anthropic | bedrock
    request_id: str
    received_at: float  # the injected clock's reading when the request arrived
    tags: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)  # x-tollgate-* request headers only

    @property
    def model(self) -> str:
        return self.request.model


class Ticket(Protocol):
    """An admitted request's reservation. ``settle`` is idempotent and called exactly once."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def settle(self, usage: Usage | None, cost: Decimal) -> None: ...


class Admission(Protocol):
    async def admit(self, call: Call, deployment_ids: Sequence[str] = ()) -> Ticket: ...

    async def admit_cached(self, call: Call) -> Ticket:
        """Admit a request the response cache answers: access and ``rpm`` only, nothing reserved."""
        ...


@dataclass(frozen=True, slots=True)
class Attempted:
    """What accounting needs to know about one finished request."""

    call: Call
    deployment: Deployment | None
    model_group: str | None
    attempts: int
    usage: Usage | None
    status: int
    error: GatewayError | None
    started: float
    ended: float
    first_token_at: float | None = None
    stream: bool = False
    cache_hit: bool = False  # answered from the response cache: no upstream, no cost


class Accounting(Protocol):
    def cost(self, deployment: Deployment, usage: Usage) -> Decimal: ...

    def record(self, attempted: Attempted, cost: Decimal) -> None:
        """Log spend and metrics. Never blocks on I/O: writes are batched off the request path."""
        ...
