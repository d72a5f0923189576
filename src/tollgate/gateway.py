"""The request lifecycle, top to bottom: admit → route (attempt ▸ retry/fallback) → send → account.

``Gateway.chat``, ``chat_stream`` and ``embed`` are the only ways a request reaches an upstream.
Each step is an ordinary ``await`` here (DESIGN.md §2.8); the edge only parses, authenticates
and renders. Streams: routing may retry and fall back only until the upstream stream has
produced its first event; after that, failures travel inside the stream, and usage is accounted
in a ``finally`` however the stream ends (done, failed, client gone).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, TypeVar

from tollgate.cache import Hit, ResponseCache, replay
from tollgate.call import Accounting, Admission, Attempted, Call, Ticket
from tollgate.canonical import (
    NO_HINTS,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    MessageStart,
    MessageStop,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolArgumentsDelta,
    Usage,
)
from tollgate.config import Deployment
from tollgate.errors import GatewayError, InvalidRequest, UpstreamError
from tollgate.policy.tokens import estimate_input_tokens, text_tokens
from tollgate.providers import Provider, SendOptions
from tollgate.routing import Outcome, Plan, Router
from tollgate.telemetry.tracing import NO_TRACING, SpanHandle, Tracing

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
        router: Router,
        providers: Mapping[str, Provider],
        admission: Admission,
        accounting: Accounting,
        drop_params: bool = False,
        clock: Callable[[], float] = time.time,
        tracing: Tracing = NO_TRACING,
        cache: ResponseCache | None = None,
    ) -> None:
        self._router = router
        self._providers = providers
        self._admission = admission
        self._accounting = accounting
        self._drop_params = drop_params
        self._clock = clock
        self._tracing = tracing
        self._cache = cache or ResponseCache.disabled()

    async def _answered_from_cache(
        self, call: Call, hit: Hit[Any], *, stream: bool = False
    ) -> dict[str, str]:
        """A request the response cache answers: admitted for its rpm only, recorded at no cost."""
        started = self._clock()
        with self._tracing.span("admission"):
            ticket = await self._admission.admit_cached(call)
        await ticket.settle(None, Decimal(0))
        attempted = Attempted(
            call=call, deployment=None, model_group=hit.group, attempts=0, usage=hit.usage, status=200,
            error=None, started=started, ended=self._clock(), stream=stream, cache_hit=True,
        )
        self._accounting.record(attempted, Decimal(0))
        return {"x-litellm-cache-key": hit.key, "x-litellm-model-group": hit.group, **ticket.headers}

    async def _admit(self, call: Call, *, stream: bool = False) -> tuple[Plan, Ticket]:
        """Plan the route (resolving aliases; UnknownModel here), then admit against every
        deployment the plan may use."""
        request = call.request
        estimate = estimate_input_tokens(request)
        hints = request.hints if isinstance(request, ChatRequest) else NO_HINTS
        with self._tracing.span("admission"):
            plan = self._router.plan(request.model, hints, estimate, stream=stream)
            candidates = [d.id for d in self._router.table.deployments(plan.group)]
            return plan, await self._admission.admit(call, candidates)

    def _attempt_span(self, deployment: Deployment, number: int) -> AbstractContextManager[SpanHandle]:
        if not self._tracing.enabled:
            return self._tracing.span("upstream.attempt")
        return self._tracing.span(
            "upstream.attempt",
            {"deployment": deployment.id, "provider": deployment.provider, "attempt": number},
        )

    def _options(self, deployment: Deployment, plan: Plan) -> SendOptions:
        drop = deployment.params.get("drop_params")
        headers: tuple[tuple[str, str], ...] = ()
        if self._tracing.enabled:  # called inside the attempt's span: the upstream continues it
            carrier: dict[str, str] = {}
            self._tracing.inject(carrier)
            headers = tuple(carrier.items())
        return SendOptions(
            # The router bounds each attempt; a stream also needs the bound between its chunks.
            timeout=plan.timeout_for(deployment) if plan.stream else None,
            drop_params=self._drop_params if drop is None else bool(drop),
            headers=headers,
        )

    def _provider(self, deployment: Deployment, request: ChatRequest | None = None) -> Provider:
        if request is not None and deployment.info.mode == "embedding":
            raise InvalidRequest(f"model '{request.model}' is an embedding model; use /embeddings")
        return self._providers[deployment.provider]

    async def chat(self, call: Call) -> ChatResult:
        request = call.request
        assert isinstance(request, ChatRequest)
        cached = await self._cache.find_chat(call, self._router.table.resolve(request.model))
        if cached.hit is not None:
            return ChatResult(cached.hit.value, await self._answered_from_cache(call, cached.hit))
        plan, ticket = await self._admit(call)
        started = self._clock()
        usage: Usage | None = None
        outcome: Outcome[ChatResponse] | None = None
        error: GatewayError | None = None

        async def attempt(deployment: Deployment, number: int) -> ChatResponse:
            with self._attempt_span(deployment, number):
                provider = self._provider(deployment, request)
                return await provider.chat(deployment, request, self._options(deployment, plan))

        try:
            outcome = await self._router.run(plan, attempt)
            usage = outcome.value.usage
            response = replace(
                outcome.value, model=request.model, created=outcome.value.created or int(started)
            )
            await self._cache.keep_chat(cached, response)
            return ChatResult(response, _headers(outcome, ticket))
        except GatewayError as exc:
            error = exc
            raise
        finally:
            await self._finish(call, ticket, outcome, usage, error, started)

    async def chat_stream(self, call: Call) -> StreamResult:
        request = call.request
        assert isinstance(request, ChatRequest)
        cached = await self._cache.find_chat(call, self._router.table.resolve(request.model))
        if cached.hit is not None:
            headers = await self._answered_from_cache(call, cached.hit, stream=True)
            return StreamResult(replay(cached.hit.value), headers)
        plan, ticket = await self._admit(call, stream=True)
        started = self._clock()

        async def attempt(
            deployment: Deployment, number: int
        ) -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
            with self._attempt_span(deployment, number):
                provider = self._provider(deployment, request)
                options = self._options(deployment, plan)
                events = await provider.chat_stream(deployment, request, options)
                # Peek at the first event: an upstream that fails inside its stream before saying
                # anything can still be retried or fallen back from, as nothing reached the client.
                try:
                    first = await anext(events)
                except StopAsyncIteration:
                    raise UpstreamError(
                        "upstream stream ended before any event", provider=deployment.provider
                    ) from None
                except BaseException:
                    await _aclose(events)
                    raise
                return first, events

        try:
            outcome = await self._router.run(plan, attempt)
        except GatewayError as exc:
            await self._finish(call, ticket, None, None, exc, started, stream=True)
            raise
        except BaseException:
            await ticket.settle(None, Decimal(0))
            raise
        first, rest = outcome.value
        return StreamResult(
            self._cache.recorded(
                cached, self._relay(call, ticket, outcome, first, rest, started, plan.estimated_tokens)
            ),
            _headers(outcome, ticket),
        )

    async def _relay(
        self,
        call: Call,
        ticket: Ticket,
        outcome: Outcome[tuple[StreamEvent, AsyncIterator[StreamEvent]]],
        first: StreamEvent,
        rest: AsyncIterator[StreamEvent],
        started: float,
        estimated_input: int = 0,
    ) -> AsyncIterator[StreamEvent]:
        model = call.request.model
        usage = Usage()
        error: GatewayError | None = None
        first_token_at: float | None = None
        streamed: list[str] = []  # output so far, in case the upstream never reports usage
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
                else:
                    if first_token_at is None:
                        first_token_at = self._clock()
                    if isinstance(event, TextDelta | ReasoningDelta):
                        streamed.append(event.text)
                    elif isinstance(event, ToolArgumentsDelta):
                        streamed.append(event.json)
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
            usage = _fill_usage(usage, estimated_input, streamed)
            await self._finish(call, ticket, outcome, usage, error, started, first_token_at, stream=True)

    async def embed(self, call: Call) -> EmbeddingResult:
        assert isinstance(call.request, EmbeddingRequest)
        cached = await self._cache.find_embeddings(call, self._router.table.resolve(call.request.model))
        if cached.hit is not None:
            return EmbeddingResult(cached.hit.value, await self._answered_from_cache(call, cached.hit))
        call = replace(call, request=cached.request)  # only the inputs the cache does not hold
        request = cached.request
        plan, ticket = await self._admit(call)
        started = self._clock()
        outcome: Outcome[EmbeddingResponse] | None = None
        error: GatewayError | None = None

        async def attempt(deployment: Deployment, number: int) -> EmbeddingResponse:
            with self._attempt_span(deployment, number):
                return await self._provider(deployment).embed(
                    deployment, request, self._options(deployment, plan)
                )

        try:
            outcome = await self._router.run(plan, attempt)
            response = await self._cache.keep_embeddings(cached, replace(outcome.value, model=request.model))
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
        with self._tracing.span("accounting"):
            await self._account(call, ticket, outcome, usage, error, started, first_token_at, stream)

    async def _account(
        self,
        call: Call,
        ticket: Ticket,
        outcome: Outcome[Any] | None,
        usage: Usage | None,
        error: GatewayError | None,
        started: float,
        first_token_at: float | None,
        stream: bool,
    ) -> None:
        deployment = outcome.deployment if outcome is not None else None
        cost = self._accounting.cost(deployment, usage) if deployment is not None and usage else Decimal(0)
        await ticket.settle(usage, cost)
        if deployment is not None and usage is not None:
            await self._router.record_usage(deployment, usage.total_tokens)
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


def _fill_usage(usage: Usage, estimated_input: int, streamed: list[str]) -> Usage:
    """A stream cut short (or an upstream that never reports usage) still used tokens: count
    the input estimate and the output relayed so far where the upstream said nothing."""
    if usage.input_tokens or usage.cache_read_tokens or usage.cache_write_tokens:
        estimated_input = usage.input_tokens
    output = usage.output_tokens or text_tokens("".join(streamed))
    if estimated_input == usage.input_tokens and output == usage.output_tokens:
        return usage
    return replace(usage, input_tokens=estimated_input, output_tokens=output)


async def _aclose(events: AsyncIterator[StreamEvent]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()
