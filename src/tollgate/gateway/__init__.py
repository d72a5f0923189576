"""The request lifecycle, top to bottom: admit → route (attempt ▸ retry/fallback) → send → account.

``Gateway.chat``, ``chat_stream``, ``embed`` and ``native`` (the provider-native passthrough
routes) are the only ways a request reaches an upstream. Each step is an ordinary ``await`` here
(DESIGN.md §2.8); the edge only parses, authenticates and renders. Every request the gateway
takes is accounted exactly once, as a ``Flight`` that lands: refused at admission, failed,
answered, cut short by the upstream or abandoned by the client. Guardrails (``guardrails.Screen``)
check the prompt after admission (pre_call), alongside routing (during_call) and the answer
before it is returned (post_call); a refusal lands the flight like any other failure.
Conversations (chat history, managed prompts) come first: their input counts like any other,
and the answer is recorded before it is returned.

Streams: routing may retry and fall back only until the upstream stream has produced its first
event; after that, failures travel inside the stream. A stream that ends without its end marker
is a ``StreamTruncated`` failure, never a silent success.

Cancellation (a client that disconnects mid-stream, a server stopping) must not lose the
accounting: the spend row and metric line are recorded synchronously, before anything can be
cancelled, and the counter settlement runs in a background task the request cannot cancel when
the request is already being cancelled (``drain`` waits for those at shutdown).

``route`` builds the route admission checks, ``sending`` each attempt's provider, options and
span; ``results`` are what the edge is handed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from tollgate.accounting.landing import Flight, Landing, cancelled, failure
from tollgate.accounting.relay import aclose, fill_usage, relay
from tollgate.cache import Hit, ResponseCache, replay
from tollgate.call import Accounting, Admission, Call, Destination, Route, Ticket
from tollgate.canonical import (
    NO_HINTS,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamEvent,
    Usage,
)
from tollgate.config import Deployment
from tollgate.conversations.lifecycle import Conversations, NoConversations
from tollgate.errors import GatewayError, StreamTruncated, UnknownModel
from tollgate.gateway.results import (
    ChatResult,
    EmbeddingResult,
    Passage,
    StreamResult,
    hit_headers,
    response_headers,
)
from tollgate.gateway.route import plan_route, within_reach
from tollgate.gateway.sending import Sender
from tollgate.guardrails import Guardrails, Screen
from tollgate.providers import Provider
from tollgate.routing import Outcome, Plan, Router
from tollgate.telemetry.tracing import NO_TRACING, Tracing

T = TypeVar("T")

__all__ = ["ChatResult", "EmbeddingResult", "Gateway", "Passage", "StreamResult"]


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
        guardrails: Guardrails | None = None,
        conversations: Conversations | NoConversations | None = None,
        cache: ResponseCache | None = None,
    ) -> None:
        self._cache = cache or ResponseCache.disabled()
        self._guardrails = guardrails or Guardrails(())
        self._conversations = conversations or NoConversations()
        self._router = router
        self._send = Sender(providers, tracing, drop_params)
        self._admission = admission
        self._clock = clock
        self._tracing = tracing
        self._landing = Landing(accounting, router.record_usage, clock=clock, tracing=tracing)

    async def _admit(self, call: Call, *, stream: bool = False) -> tuple[Plan, Ticket]:
        """Plan the route, admit the request against every model group it may reach, and drop
        the fallbacks admission does not let it reach (``gateway/route.py``)."""
        with self._tracing.span("admission"):
            plan, route = plan_route(self._router, call, stream=stream)
            ticket = await self._admission.admit(call, route)
            if len(route.destinations) > 1:
                plan = within_reach(plan, self._router.table, ticket.reachable)
            return plan, ticket

    async def _take_off(self, call: Call, *, stream: bool = False) -> tuple[Plan, Flight]:
        started = self._clock()
        try:
            plan, ticket = await self._admit(call, stream=stream)
        except BaseException as exc:
            known = None if isinstance(exc, UnknownModel) else call.model  # routing got past the name
            self._landing.refused(call, failure(exc), started, known)
            raise
        return plan, Flight(call, ticket, started, stream, model_group=plan.group)

    def refused(self, call: Call, error: GatewayError, started: float | None = None) -> None:
        """Account for a request answered with ``error`` before any upstream was asked (the edge
        calls this for the requests it refuses itself: authentication, bad bodies, size)."""
        self._landing.refused(call, error, started)

    async def drain(self) -> None:
        """Wait for settlements still running in the background (shutdown, before stores close)."""
        await self._landing.drain()

    async def _fly(
        self,
        flight: Flight,
        plan: Plan,
        attempt: Callable[[Deployment, int], Awaitable[T]],
        usage_of: Callable[[T], Usage | None] | None,
        screen: Screen | None = None,
    ) -> Outcome[T]:
        """Route the attempts (with ``screen``'s during_call guardrails alongside). A failure or a
        cancellation lands the flight; so does success unless ``usage_of`` is None (a stream lands
        when it ends, a guarded answer once the guardrails have passed it)."""
        try:
            routed = self._router.run(plan, attempt)
            request = flight.call.request
            if screen is not None and isinstance(request, ChatRequest):
                outcome = await screen.alongside(request, routed)
            else:
                outcome = await routed
        except BaseException as exc:
            await self._landing.land(flight, None, failure(exc))
            raise
        flight.deployment, flight.model_group = outcome.deployment, outcome.model_group
        flight.attempts = outcome.attempts
        if usage_of is not None:
            await self._landing.land(flight, usage_of(outcome.value))
        return outcome

    async def _before_take_off(self, call: Call, step: Awaitable[T]) -> T:
        """A step before take-off (conversations, pre_call guardrails); its refusal is accounted
        like every refusal before take-off."""
        started = self._clock()
        try:
            return await step
        except BaseException as exc:
            self._landing.refused(call, failure(exc), started)
            raise

    async def _screen(self, call: Call) -> tuple[Screen, Call]:
        """The request's guardrails, and the call as the pre_call ones let it through (masked,
        perhaps): what the cache looks up, what goes upstream and what the spend row records."""
        screen = self._guardrails.screen(call)
        request = call.request
        assert isinstance(request, ChatRequest)
        screened = await self._before_take_off(call, screen.before(request))
        return screen, call if screened is request else replace(call, request=screened)

    def _group(self, request: ChatRequest | EmbeddingRequest) -> str | None:
        """The model group a request goes to (the cache keys answers by it)."""
        hints = request.hints if isinstance(request, ChatRequest) else NO_HINTS
        return self._router.table.group_for(request.model, hints.model_group)

    async def _hit(
        self, call: Call, hit: Hit[Any], screen: Screen | None = None, *, stream: bool = False
    ) -> Flight:
        """Take off for a request the response cache answers: admitted for its rpm only (nothing
        reserved), the during_call guardrails checking its prompt meanwhile. The caller lands it."""
        started = self._clock()
        deployments = tuple(d.id for d in self._router.table.deployments(hit.group))
        route = Route((Destination(call.model, hit.group, deployments),))
        try:
            with self._tracing.span("admission"):
                admitted = self._admission.admit_cached(call, route)
                request = call.request
                if screen is not None and isinstance(request, ChatRequest):
                    ticket = await screen.alongside(request, admitted)
                else:
                    ticket = await admitted
        except BaseException as exc:
            self._landing.refused(call, failure(exc), started, hit.group)
            raise
        return Flight(call, ticket, started, stream, model_group=hit.group, cache_hit=True)

    async def _guarded(self, flight: Flight, response: ChatResponse, screen: Screen) -> ChatResponse:
        """``response`` once the guardrails passed it (the during_call verdict, then post_call);
        the flight lands either way, with the answer's usage (an upstream's tokens count)."""
        try:
            response = await screen.after(response)
        except BaseException as exc:
            await self._landing.land(flight, response.usage, failure(exc))
            raise
        await self._landing.land(flight, response.usage)
        return response

    async def chat(self, call: Call) -> ChatResult:
        exchange = await self._before_take_off(call, self._conversations.open(call))
        try:
            result = await self._chat(exchange.call)
        except BaseException:
            await exchange.abandon()
            raise
        result.response = await exchange.record(result.response)
        result.headers.update(exchange.headers)
        return result

    async def chat_stream(self, call: Call) -> StreamResult:
        exchange = await self._before_take_off(call, self._conversations.open(call))
        try:
            opened = await self._chat_stream(exchange.call)
        except BaseException:
            await exchange.abandon()
            raise
        events = exchange.relay(opened.events)  # recorded when the stream ends complete
        close_relay = opened.close

        async def close() -> None:
            await aclose(events)
            await close_relay()

        opened.events, opened.close = events, close
        opened.headers.update(exchange.headers)
        return opened

    async def _chat(self, call: Call) -> ChatResult:
        screen, call = await self._screen(call)
        request = call.request
        assert isinstance(request, ChatRequest)
        cached = await self._cache.find_chat(call, self._group(request))
        if cached.hit is not None:
            flight = await self._hit(call, cached.hit, screen)
            response = await self._guarded(flight, cached.hit.value, screen)
            return ChatResult(response, hit_headers(cached.hit, flight.ticket) | screen.headers)
        plan, flight = await self._take_off(call)

        async def attempt(deployment: Deployment, number: int) -> ChatResponse:
            flight.aboard(deployment, number)
            with self._send.span(deployment, number):
                provider = self._send.provider(deployment, request)
                return await provider.chat(deployment, request, self._send.options(deployment, plan))

        outcome = await self._fly(flight, plan, attempt, None, screen)
        value = outcome.value
        response = replace(
            value,
            id=value.id or f"chatcmpl-{call.request_id}",
            model=request.model,
            created=value.created or int(flight.started),
        )
        response = await self._guarded(flight, response, screen)
        await self._cache.keep_chat(cached, response)
        return ChatResult(response, response_headers(outcome, flight.ticket) | screen.headers)

    async def embed(self, call: Call) -> EmbeddingResult:
        assert isinstance(call.request, EmbeddingRequest)
        cached = await self._cache.find_embeddings(call, self._group(call.request))
        if cached.hit is not None:
            flight = await self._hit(call, cached.hit)
            await self._landing.land(flight, cached.hit.usage)
            return EmbeddingResult(cached.hit.value, hit_headers(cached.hit, flight.ticket))
        request = cached.request  # only the inputs the cache does not hold
        if request is not call.request:
            call = replace(call, request=request, input_tokens=None)
        plan, flight = await self._take_off(call)

        async def attempt(deployment: Deployment, number: int) -> EmbeddingResponse:
            flight.aboard(deployment, number)
            with self._send.span(deployment, number):
                return await self._send.provider(deployment).embed(
                    deployment, request, self._send.options(deployment, plan)
                )

        outcome = await self._fly(flight, plan, attempt, lambda answer: answer.usage)
        response = await self._cache.keep_embeddings(cached, replace(outcome.value, model=request.model))
        return EmbeddingResult(response, response_headers(outcome, flight.ticket))

    async def _chat_stream(self, call: Call) -> StreamResult:
        screen, call = await self._screen(call)
        request = call.request
        assert isinstance(request, ChatRequest)
        cached = await self._cache.find_chat(call, self._group(request))
        if cached.hit is not None:
            return await self._replayed(call, cached.hit, screen)
        plan, flight = await self._take_off(call, stream=True)

        async def attempt(
            deployment: Deployment, number: int
        ) -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
            flight.aboard(deployment, number)
            with self._send.span(deployment, number):
                provider = self._send.provider(deployment, request)
                options = self._send.options(deployment, plan)
                events = await provider.chat_stream(deployment, request, options)
                # Peek at the first event: an upstream that fails inside its stream before saying
                # anything can still be retried or fallen back from, as nothing reached the client.
                try:
                    first = await anext(events)
                except StopAsyncIteration:
                    raise StreamTruncated(
                        "upstream stream ended before any event", provider=deployment.provider
                    ) from None
                except BaseException:
                    await aclose(events)
                    raise
                return first, events

        outcome = await self._fly(flight, plan, attempt, None, screen)
        first, rest = outcome.value
        relayed = relay(self._landing, flight, first, rest, plan.estimated_tokens, self._clock)
        unread = fill_usage(Usage(), plan.estimated_tokens, [])
        try:
            # Guardrails settle before the first byte: the during_call verdict, post_call on the
            # buffered answer. A refusal is thrown into the relay, which lands it.
            events = self._cache.recorded(cached, await screen.after_stream(relayed))  # kept if complete
        except BaseException as exc:
            await aclose(relayed)
            if not flight.landed:
                await self._landing.land(flight, unread, failure(exc))
            await aclose(rest)
            raise

        async def close() -> None:
            await aclose(events)  # a relay left suspended lands here, with its usage so far
            if events is not relayed:
                await aclose(relayed)
            if not flight.landed:  # never read at all: the client left before the first byte
                await self._landing.land(flight, unread, cancelled())
            await aclose(rest)

        return StreamResult(events, close, response_headers(outcome, flight.ticket) | screen.headers)

    async def _replayed(self, call: Call, hit: Hit[ChatResponse], screen: Screen) -> StreamResult:
        """A stream the response cache answers: the stored answer replayed as events."""
        flight = await self._hit(call, hit, screen, stream=True)
        try:
            events = await screen.after_stream(replay(hit.value))
        except BaseException as exc:
            await self._landing.land(flight, hit.usage, failure(exc))
            raise
        await self._landing.land(flight, hit.usage)

        async def close() -> None:
            await aclose(events)

        return StreamResult(events, close, hit_headers(hit, flight.ticket) | screen.headers)

    async def native(
        self, call: Call, provider: str, send: Callable[[Deployment | None], Awaitable[T]]
    ) -> Passage[T]:
        """A provider-native passthrough call: admitted like any other, then ``send`` with the
        model group's first deployment of ``provider`` (None if it has none). No retries or
        fallbacks: the body is the provider's own. The caller lands the passage when the
        answer has been relayed."""
        plan, flight = await self._take_off(call)
        deployments = self._router.table.deployments(plan.group)
        deployment = next((d for d in deployments if d.provider == provider), None)
        flight.model_group = plan.group
        if deployment is not None:
            flight.aboard(deployment, 1)
        try:
            value = await send(deployment)
        except BaseException as exc:
            await self._landing.land(flight, None, failure(exc))
            raise

        async def land(usage: Usage | None, error: GatewayError | None) -> None:
            await self._landing.land(flight, usage, error)

        return Passage(value, deployment, flight.ticket.headers, land)
