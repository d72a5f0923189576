"""The per-request context and the lifecycle contracts both sides of the gateway import.

``Call`` is the typed per-request context handed down the lifecycle (DESIGN.md §2.9). The
protocols say what the gateway needs from admission (``Admission`` → ``Ticket``) and from
accounting (``Accounting``, fed one ``Attempted`` per finished request); ``policy`` and
``accounting`` implement them without importing ``gateway``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from tollgate.auth.principal import Principal
from tollgate.canonical import ChatRequest, EmbeddingRequest, Usage
from tollgate.config import Deployment
from tollgate.errors import GatewayError


@dataclass(slots=True)
class GuardrailTrail:
    """What the request's guardrails did, one JSON-ready entry per run, in order: appended by the
    guardrails step, read by accounting (the spend log's ``guardrail_information``)."""

    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def applied(self) -> tuple[str, ...]:
        """Names of the guardrails that ran, first run first (``x-litellm-applied-guardrails``)."""
        return tuple(dict.fromkeys(str(run["guardrail_name"]) for run in self.runs))


@dataclass(frozen=True, slots=True)
class Call:
    principal: Principal
    request: ChatRequest | EmbeddingRequest
    client_format: str  # the ingress dialect name: openai | anthropic | bedrock
    request_id: str
    received_at: float  # the injected clock's reading when the request arrived
    tags: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)  # x-tollgate-* request headers only
    # The input-token estimate (``policy.tokens``), made once by the edge for routing and
    # admission alike; ``None``: not made yet (whoever needs it estimates).
    input_tokens: int | None = None
    guardrails: GuardrailTrail = field(default_factory=GuardrailTrail)

    @property
    def model(self) -> str:
        return self.request.model


@dataclass(frozen=True, slots=True)
class Destination:
    """A model group a request may reach: ``name`` as the client or the config wrote it (a group,
    an alias, an upstream id), the ``group`` it resolves to, and that group's deployments."""

    name: str
    group: str
    deployment_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Route:
    """Every destination a request's plan may reach — the group its model resolved to first, then
    each fallback group — and its input-token estimate (``policy.tokens``)."""

    destinations: tuple[Destination, ...]
    input_tokens: int = 0


class Ticket(Protocol):
    """An admitted request's reservation. ``settle`` is idempotent and called exactly once.

    ``reachable`` names the model groups admission let the request reach (fallback groups the
    principal may not use are not among them); ``settle`` takes the group that answered, if any.
    """

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def reachable(self) -> frozenset[str]: ...

    @property
    def counted_in(self) -> str:
        """Where the request's limits and budgets were counted: ``lease`` (a replica's quota
        lease), ``redis`` (one by one), ``memory`` (this process), ``open`` (Redis down, rate
        limits not counted), or ``""`` when nothing needed counting."""
        ...

    async def settle(self, usage: Usage | None, cost: Decimal, group: str | None = None) -> None: ...


class Admission(Protocol):
    async def admit(self, call: Call, route: Route) -> Ticket: ...

    async def admit_cached(self, call: Call, route: Route | None = None) -> Ticket:
        """Admit a request the response cache answers (on ``route``'s first destination): access,
        budgets and ``rpm`` only, nothing reserved."""
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
