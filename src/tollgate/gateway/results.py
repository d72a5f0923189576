"""What the gateway hands the edge: a whole answer, an embedding, a stream with its ``close``, or
an admitted passthrough call (``Passage``); and the routing (or cache) headers every answer carries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tollgate.cache import Hit
from tollgate.call import Ticket
from tollgate.canonical import ChatResponse, EmbeddingResponse, StreamEvent, Usage
from tollgate.config import Deployment
from tollgate.errors import GatewayError
from tollgate.routing import Outcome

T = TypeVar("T")


@dataclass(slots=True)
class ChatResult:
    response: ChatResponse
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class EmbeddingResult:
    response: EmbeddingResponse
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class StreamResult:
    """``events`` for the client; ``close`` after the response ended, however it ended (even if
    ``events`` was never read): it lands the request if the stream did not."""

    events: AsyncIterator[StreamEvent]
    close: Callable[[], Awaitable[None]]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Passage(Generic[T]):
    """An admitted passthrough call: what ``send`` returned, and ``land`` to account for it (once;
    later calls do nothing)."""

    value: T
    deployment: Deployment | None
    headers: Mapping[str, str]
    land: Callable[[Usage | None, GatewayError | None], Awaitable[None]]


def response_headers(outcome: Outcome[Any], ticket: Ticket) -> dict[str, str]:
    headers = {
        "x-litellm-model-id": outcome.deployment.id,
        "x-litellm-model-group": outcome.model_group,
        "x-tollgate-deployment": outcome.deployment.id,
        "x-tollgate-attempts": str(outcome.attempts),
    }
    headers.update(ticket.headers)
    return headers


def hit_headers(hit: Hit[Any], ticket: Ticket) -> dict[str, str]:
    """The headers of an answer from the response cache (``x-litellm-cache-key`` names its entry)."""
    return {"x-litellm-cache-key": hit.key, "x-litellm-model-group": hit.group, **ticket.headers}
