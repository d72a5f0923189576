"""The request lifecycle, top to bottom: admit → route (attempt ▸ retry/fallback) → send → account.

``Gateway.chat``, ``chat_stream`` and ``embed`` are the only ways a request reaches an upstream.
Each step is an ordinary ``await`` here (DESIGN.md §2.8); the edge only parses, authenticates
and renders. Streams: routing may retry and fall back only until the upstream stream has
produced its first event; after that, failures travel inside the stream, and usage is accounted
in a ``finally`` however the stream ends (done, failed, client gone).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from tollgate.call import Call
from tollgate.canonical import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    MessageStart,
    MessageStop,
    StreamEvent,
    Usage,
)
from tollgate.config import Deployment
from tollgate.errors import GatewayError, InvalidRequest, UpstreamError
from tollgate.providers import Provider, SendOptions

T = TypeVar("T")
V = TypeVar("V")


class Ticket(Protocol):
    """An admitted request's reservation. ``settle`` is idempotent and called exactly once."""

    headers: Mapping[str, str]

    async def settle(self, usage: Usage | None, cost: Decimal) -> None: ...


class Admission(Protocol):
    async def admit(self, call: Call, deployments: Sequence[Deployment]) -> Ticket: ...


@dataclass(frozen=True, slots=True)
class Outcome(Generic[V]):
    value: V
    deployment: Deployment
    model_group: str
    attempts: int


class Routing(Protocol):
    def deployments(self, model: str) -> Sequence[Deployment]:
        """The deployments that may serve ``model`` (after aliases); raises ``UnknownModel``."""
        ...

    async def run(
        self,
        call: Call,
        attempt: Callable[[Deployment, float | None], Awaitable[T]],
    ) -> Outcome[T]: ...


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


class Accounting(Protocol):
    def cost(self, deployment: Deployment, usage: Usage) -> Decimal: ...

    def record(self, attempted: Attempted, cost: Decimal) -> None:
        """Log spend and metrics. Never blocks on I/O: writes are batched off the request path."""
        ...


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
    events: AsyncIterator[StreamEvent]
    headers: dict[str, str] = field(default_factory=dict)


def _headers(outcome: Outcome[Any], ticket: Ticket) -> dict[str, str]:
    headers = {
        "x-litellm-model-id": outcome.deployment.id,
        "x-litellm-model-group": outcome.model_group,
        "x-tollgate-deployment": outcome.deployment.id,
        "x-tollgate-attempts": str(outcome.attempts),
    }
    headers.update(ticket.headers)
    return headers


class Gateway:
    def __init__(
        self,
        *,
        routing: Routing,
        providers: Mapping[str, Provider],
        admission: Admission,
        accounting: Accounting,
        drop_params: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._routing = routing
        self._providers = providers
        self._admission = admission
        self._accounting = accounting
        self._drop_params = drop_params
        self._clock = clock

    def _options(self, deployment: Deployment, timeout: float | None) -> SendOptions:
        drop = deployment.params.get("drop_params")
        return SendOptions(timeout=timeout, drop_params=self._drop_params if drop is None else bool(drop))

    def _upstream_request(self, request: ChatRequest, deployment: Deployment) -> ChatRequest:
        if deployment.info.mode == "embedding":
            raise InvalidRequest(f"model '{request.model}' is an embedding model; use /embeddings")
        return request

    async def chat(self, call: Call) -> ChatResult:
        request = call.request
        assert isinstance(request, ChatRequest)
        ticket = await self._admission.admit(call, self._routing.deployments(request.model))
        started = self._clock()
        usage: Usage | None = None
        outcome: Outcome[ChatResponse] | None = None
        error: GatewayError | None = None
        try:

            async def attempt(deployment: Deployment, timeout: float | None) -> ChatResponse:
                provider = self._providers[deployment.provider]
                upstream_request = self._upstream_request(request, deployment)
                return await provider.chat(deployment, upstream_request, self._options(deployment, timeout))

            outcome = await self._routing.run(call, attempt)
            usage = outcome.value.usage
            response = replace(
                outcome.value, model=request.model, created=outcome.value.created or int(started)
            )
            return ChatResult(response, _headers(outcome, ticket))
        except GatewayError as exc:
            error = exc
            raise
        finally:
            await self._finish(call, ticket, outcome, usage, error, started)

    async def chat_stream(self, call: Call) -> StreamResult:
        request = call.request
        assert isinstance(request, ChatRequest)
        ticket = await self._admission.admit(call, self._routing.deployments(request.model))
        started = self._clock()

        async def attempt(
            deployment: Deployment, timeout: float | None
        ) -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
            provider = self._providers[deployment.provider]
            upstream_request = self._upstream_request(request, deployment)
            events = await provider.chat_stream(
                deployment, upstream_request, self._options(deployment, timeout)
            )
            # Peek at the first event: an upstream that fails inside its stream before saying
            # anything can still be retried or fallen back from, as nothing reached the client.
            try:
                first = await anext(events)
            except StopAsyncIteration:
                raise UpstreamError(
                    "upstream stream ended before any event", provider=deployment.provider
                ) from None
            return first, events

        try:
            outcome = await self._routing.run(call, attempt)
        except GatewayError as exc:
            await self._finish(call, ticket, None, None, exc, started, stream=True)
            raise
        except BaseException:
            await ticket.settle(None, Decimal(0))
            raise
        first, rest = outcome.value
        return StreamResult(
            self._relay(call, ticket, outcome, first, rest, started), _headers(outcome, ticket)
        )

    async def _relay(
        self,
        call: Call,
        ticket: Ticket,
        outcome: Outcome[tuple[StreamEvent, AsyncIterator[StreamEvent]]],
        first: StreamEvent,
        rest: AsyncIterator[StreamEvent],
        started: float,
    ) -> AsyncIterator[StreamEvent]:
        model = call.request.model
        usage = Usage()
        error: GatewayError | None = None
        first_token_at: float | None = None
        try:
            event = first
            while True:
                if isinstance(event, MessageStart):
                    usage = usage + event.usage
                    event = replace(
                        event,
                        model=model,
                        id=event.id or f"chatcmpl-{call.request_id}",
                        created=event.created or int(started),
                    )
                elif isinstance(event, MessageStop):
                    # MessageStop carries the whole message's usage; it supersedes the start's.
                    usage = event.usage if event.usage.total_tokens else usage
                elif first_token_at is None:
                    first_token_at = self._clock()
                yield event
                try:
                    event = await anext(rest)
                except StopAsyncIteration:
                    break
        except GatewayError as exc:
            error = exc
            raise
        finally:
            await _aclose(rest)
            await self._finish(call, ticket, outcome, usage, error, started, first_token_at, stream=True)

    async def embed(self, call: Call) -> EmbeddingResult:
        request = call.request
        assert isinstance(request, EmbeddingRequest)
        ticket = await self._admission.admit(call, self._routing.deployments(request.model))
        started = self._clock()
        outcome: Outcome[EmbeddingResponse] | None = None
        error: GatewayError | None = None
        try:

            async def attempt(deployment: Deployment, timeout: float | None) -> EmbeddingResponse:
                provider = self._providers[deployment.provider]
                return await provider.embed(deployment, request, self._options(deployment, timeout))

            outcome = await self._routing.run(call, attempt)
            response = replace(outcome.value, model=request.model)
            return EmbeddingResult(response, _headers(outcome, ticket))
        except GatewayError as exc:
            error = exc
            raise
        finally:
            usage = outcome.value.usage if outcome is not None else None
            await self._finish(call, ticket, outcome, usage, error, started)

    async def _finish(
        self,
        call: Call,
        ticket: Ticket,
        outcome: Outcome[Any] | None,
        usage: Usage | None,
        error: GatewayError | None,
        started: float,
        first_token_at: float | None = None,
        *,
        stream: bool = False,
    ) -> None:
        deployment = outcome.deployment if outcome is not None else None
        cost = self._accounting.cost(deployment, usage) if deployment is not None and usage else Decimal(0)
        await ticket.settle(usage, cost)
        self._accounting.record(
            Attempted(
                call=call,
                deployment=deployment,
                model_group=outcome.model_group if outcome is not None else None,
                attempts=outcome.attempts if outcome is not None else 0,
                usage=usage,
                status=error.status if error is not None else 200,
                error=error,
                started=started,
                ended=self._clock(),
                first_token_at=first_token_at,
                stream=stream,
            ),
            cost,
        )


async def _aclose(events: AsyncIterator[StreamEvent]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()
