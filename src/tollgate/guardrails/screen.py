"""One request's guardrails, step by step, as the gateway's lifecycle calls them.

``before``: choose the guardrails (``selection``) and run the pre_call ones, one after the other,
on the prompt; the request that goes upstream carries their masked text. ``alongside``: start the
during_call ones as a task while the upstream works. ``after``: wait for their verdict, then run
the post_call ones on the answer (masking it). Streams: ``after_stream`` settles everything
before the first byte reaches the client, so a refusal is still a plain 400: it waits for the
during_call verdict, and with post_call guardrails it buffers the whole answer, checks it, and
then replays it (masked). That costs streaming its early first token whenever a post_call
guardrail applies (docs/guardrails.md); the alternative, checking at the end of a stream already
shown, could neither mask nor take anything back.

A refusal raised after the upstream answered is thrown into the gateway's own event stream
(``athrow``), so the request is accounted as the refusal it became, with the tokens it used.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import TypeVar

from tollgate.call import GuardrailTrail
from tollgate.canonical import ChatRequest, ChatResponse, MessageStop, StreamEvent
from tollgate.errors import GatewayError
from tollgate.guardrails.guard import Guard, applied_headers
from tollgate.guardrails.texts import (
    request_texts,
    response_texts,
    stream_texts,
    with_request_texts,
    with_response_texts,
    with_stream_texts,
)

T = TypeVar("T")


async def _all(checks: Sequence[Awaitable[list[str]]]) -> None:
    """Run checks together; the first to fail fails them all (the rest are cancelled)."""
    tasks = [asyncio.ensure_future(check) for check in checks]
    try:
        for done in asyncio.as_completed(tasks):
            await done
    finally:
        for task in tasks:
            task.cancel()


def _retrieve(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()  # read, so an unawaited failure is not logged as never retrieved


class Screen:
    """Created per request by ``Guardrails.screen``; cheap when nothing applies."""

    def __init__(
        self,
        guards: Sequence[Guard],
        trail: GuardrailTrail,
        refusal: GatewayError | None = None,
        *,
        reveal: bool = False,
    ) -> None:
        self._guards = guards
        self._reveal = reveal  # refusals carry the assessment (the caller is an admin)
        self._trail = trail
        self._refusal = refusal  # the selection's error, raised by ``before`` inside the lifecycle
        self._pending: asyncio.Future[None] | None = None

    def _in(self, mode: str) -> list[Guard]:
        return [g for g in self._guards if mode in g.config.modes]

    @property
    def headers(self) -> dict[str, str]:
        """``x-litellm-applied-guardrails``: the guardrails that ran, once they have."""
        return applied_headers(self._trail)

    async def before(self, request: ChatRequest) -> ChatRequest:
        if self._refusal is not None:
            raise self._refusal
        pre = self._in("pre_call")
        if not pre:
            return request
        texts = request_texts(request)
        original = list(texts)
        for guard in pre:
            texts = await guard.check(
                texts, "pre_call", self._trail, mask=guard.config.mask_request, reveal=self._reveal
            )
        return request if texts == original else with_request_texts(request, texts)

    async def alongside(self, request: ChatRequest, work: Awaitable[T]) -> T:
        """``work`` (the upstream call) with the during_call guardrails checking ``request`` meanwhile;
        their verdict is awaited by ``after`` / ``after_stream``."""
        during = self._in("during_call")
        if not during:
            return await work
        texts = request_texts(request)
        checks = [g.check(texts, "during_call", self._trail, mask=False, reveal=self._reveal) for g in during]
        self._pending = pending = asyncio.ensure_future(_all(checks))
        pending.add_done_callback(_retrieve)
        try:
            return await work
        except BaseException:
            pending.cancel()
            raise

    async def _during_verdict(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await pending

    async def after(self, response: ChatResponse) -> ChatResponse:
        await self._during_verdict()
        post = self._in("post_call")
        if not post:
            return response
        texts = response_texts(response)
        original = list(texts)
        for guard in post:
            texts = await guard.check(
                texts, "post_call", self._trail, mask=guard.config.mask_response, reveal=self._reveal
            )
        return response if texts == original else with_response_texts(response, texts)

    async def after_stream(self, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
        """``events`` (the gateway's relay of the upstream stream) once the guardrails allow it."""
        post = self._in("post_call")
        if self._pending is None and not post:
            return events
        buffered: list[StreamEvent] = []
        ended = False
        try:
            while True:
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    ended = True
                    break
                buffered.append(event)
                if not post or isinstance(event, MessageStop):
                    break
            await self._during_verdict()
            buffered = await self._check_stream(post, buffered)
        except GatewayError as exc:
            if not ended:
                await _throw(events, exc)
            raise
        except BaseException:
            await _close(events)
            raise
        return _replay(buffered, None if ended else events)

    async def _check_stream(self, post: list[Guard], events: list[StreamEvent]) -> list[StreamEvent]:
        if not post:
            return events
        texts = stream_texts(events)
        original = list(texts)
        for guard in post:
            texts = await guard.check(
                texts, "post_call", self._trail, mask=guard.config.mask_response, reveal=self._reveal
            )
        return events if texts == original else with_stream_texts(events, texts)


async def _throw(events: AsyncIterator[StreamEvent], exc: GatewayError) -> None:
    """Refuse inside the relay, so it accounts the request as this refusal (and closes upstream)."""
    throw = getattr(events, "athrow", None)
    if throw is None:
        await _close(events)
        return
    try:
        await throw(exc)
    except (GatewayError, StopAsyncIteration):
        return
    await _close(events)  # the relay went on instead of ending: make it end


async def _close(events: AsyncIterator[StreamEvent]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


async def _replay(
    buffered: list[StreamEvent], rest: AsyncIterator[StreamEvent] | None
) -> AsyncIterator[StreamEvent]:
    try:
        for event in buffered:
            yield event
        if rest is not None:
            async for event in rest:
                yield event
    finally:
        if rest is not None:
            await _close(rest)
