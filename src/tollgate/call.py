"""``Call``: the typed per-request context handed down the gateway lifecycle (DESIGN.md §2.9)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tollgate.auth.principal import Principal
from tollgate.canonical import ChatRequest, EmbeddingRequest


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
