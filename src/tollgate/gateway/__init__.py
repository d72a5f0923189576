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

``route`` builds the route admission checks; ``results`` are what the edge is handed.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import TypeVar

from tollgate.accounting.landing import Flight, Landing, cancelled, failure
from tollgate.accounting.relay import aclose, fill_usage, relay
from tollgate.call import Accounting, Admission, Call, Ticket
from tollgate.canonical import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamEvent,
    Usage,
)
from tollgate.config import Deployment
from tollgate.conversations.exchange import Passing, Recorded
from tollgate.conversations.lifecycle import Conversations, NoConversations
from tollgate.errors import GatewayError, InvalidRequest, StreamTruncated, UnknownModel
from tollgate.gateway.results import ChatResult, EmbeddingResult, Passage, StreamResult, response_headers
from tollgate.gateway.route import plan_route, within_reach
from tollgate.guardrails import Guardrails, Screen
from tollgate.providers import Provider, SendOptions
from tollgate.routing import Outcome, Plan, Router
from tollgate.telemetry.tracing import NO_TRACING, SpanHandle, Tracing

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
    ) -> None:
        self._guardrails = guardrails or Guardrails(())
        self._conversations = conversations or NoConversations()
        self._router = router
        self._providers = providers
        self._admission = admission
        self._drop_params = drop_params
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

    async def _screened(self, flight: Flight, screen: Screen) -> ChatRequest:
        """The prompt as the pre_call guardrails let it through (masked, perhaps); a refusal
        lands the flight."""
        request = flight.call.request
        assert isinstance(request, ChatRequest)
        try:
            screened = await screen.before(request)
        except BaseException as exc:
            await self._landing.land(flight, None, failure(exc))
            raise
        if screened is not request:  # what went upstream is what the spend row records
            flight.call = replace(flight.call, request=screened)
        return screened

    async def _open(self, call: Call) -> Passing | Recorded:
        """The conversation step; its refusals are accounted like every refusal before take-off."""
        started = self._clock()
        try:
            return await self._conversations.open(call)
        except BaseException as exc:
            self._landing.refused(call, failure(exc), started)
            raise

    async def chat(self, call: Call) -> ChatResult:
        exchange = await self._open(call)
        try:
            result = await self._chat(exchange.call)
        except BaseException:
            await exchange.abandon()
            raise
        result.response = await exchange.record(result.response)
        result.headers.update(exchange.headers)
        return result

    async def chat_stream(self, call: Call) -> StreamResult:
        exchange = await self._open(call)
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
        assert isinstance(call.request, ChatRequest)
        plan, flight = await self._take_off(call)
        screen = self._guardrails.screen(call)
        request = await self._screened(flight, screen)

        async def attempt(deployment: Deployment, number: int) -> ChatResponse:
            flight.aboard(deployment, number)
            with self._attempt_span(deployment, number):
                provider = self._provider(deployment, request)
                return await provider.chat(deployment, request, self._options(deployment, plan))

        outcome = await self._fly(flight, plan, attempt, None, screen)
        value = outcome.value
        response = replace(
            value,
            id=value.id or f"chatcmpl-{call.request_id}",
            model=request.model,
            created=value.created or int(flight.started),
        )
        try:
            response = await screen.after(response)  # the during_call verdict, then post_call
        except BaseException as exc:
            await self._landing.land(flight, value.usage, failure(exc))  # the upstream's tokens count
            raise
        await self._landing.land(flight, value.usage)
        return ChatResult(response, response_headers(outcome, flight.ticket) | screen.headers)

    async def embed(self, call: Call) -> EmbeddingResult:
        request = call.request
        assert isinstance(request, EmbeddingRequest)
        plan, flight = await self._take_off(call)

        async def attempt(deployment: Deployment, number: int) -> EmbeddingResponse:
            flight.aboard(deployment, number)
            with self._attempt_span(deployment, number):
                return await self._provider(deployment).embed(
                    deployment, request, self._options(deployment, plan)
                )

        outcome = await self._fly(flight, plan, attempt, lambda answer: answer.usage)
        response = replace(outcome.value, model=request.model)
        return EmbeddingResult(response, response_headers(outcome, flight.ticket))

    async def _chat_stream(self, call: Call) -> StreamResult:
        assert isinstance(call.request, ChatRequest)
        plan, flight = await self._take_off(call, stream=True)
        screen = self._guardrails.screen(call)
        request = await self._screened(flight, screen)

        async def attempt(
            deployment: Deployment, number: int
        ) -> tuple[StreamEvent, AsyncIterator[StreamEvent]]:
            flight.aboard(deployment, number)
            with self._attempt_span(deployment, number):
                provider = self._provider(deployment, request)
                options = self._options(deployment, plan)
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
            events = await screen.after_stream(relayed)
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
