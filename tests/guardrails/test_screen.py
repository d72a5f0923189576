"""A request's guardrails in process, with a scripted ApplyGuardrail (the fake Bedrock's ``assess``):
masking, concurrency of during_call, failing closed or open, and refusals thrown into the stream
relay so it accounts them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from tollgate.call import GuardrailTrail
from tollgate.canonical import (
    ChatRequest,
    ChatResponse,
    Message,
    MessageStart,
    MessageStop,
    StreamEvent,
    TextDelta,
    TextPart,
)
from tollgate.config import GuardrailConfig
from tollgate.errors import GatewayError, GuardrailBlocked, GuardrailUnavailable, UpstreamTimeout
from tollgate.fakes.guardrails import assess
from tollgate.guardrails.guard import Guard
from tollgate.guardrails.screen import Screen


class Checker:
    """ApplyGuardrail as the fake Bedrock answers it; ``gate`` holds answers back until set."""

    def __init__(
        self, identifier: str, *, gate: asyncio.Event | None = None, error: GatewayError | None = None
    ) -> None:
        self.identifier = identifier
        self.gate = gate
        self.error = error
        self.calls: list[tuple[str, list[str]]] = []
        self.called = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def apply(self, source: str, texts: Sequence[str]) -> dict[str, Any]:
        self.calls.append((source, list(texts)))
        self.called.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        if self.error is not None:
            raise self.error
        return assess(self.identifier, list(texts))


def _screen(mode: str, checker: Checker, trail: GuardrailTrail, **config: Any) -> Screen:
    config_ = GuardrailConfig("g", checker.identifier, "1", (mode,), **config)
    return Screen([Guard(config_, checker, lambda *_: None)], trail)


def _request(text: str) -> ChatRequest:
    return ChatRequest(model="m", messages=(Message("user", (TextPart(text),)),))


async def test_pre_call_masks_what_goes_upstream_and_records_the_run() -> None:
    trail = GuardrailTrail()
    screen = _screen("pre_call", Checker("anonymize-email"), trail, mask_request=True)
    masked = await screen.before(_request("mail a@b.co"))
    assert masked.messages[0].parts == (TextPart("mail {EMAIL}"),)
    assert screen.headers == {"x-litellm-applied-guardrails": "g"}
    run = trail.runs[0]
    assert (run["guardrail_status"], run["guardrail_action"], run["masking_applied"]) == (
        "guardrail_intervened", "ANONYMIZED", True,
    )  # fmt: skip


async def test_without_masking_an_anonymizing_guardrail_changes_nothing() -> None:
    screen = _screen("pre_call", Checker("anonymize-email"), GuardrailTrail())
    request = _request("mail a@b.co")
    assert await screen.before(request) is request


async def test_during_call_runs_while_the_upstream_works() -> None:
    checker = Checker("block-bad")

    async def upstream() -> str:
        await checker.called.wait()  # only returns once the guardrail has been asked
        return "answer"

    screen = _screen("during_call", checker, GuardrailTrail())
    assert await asyncio.wait_for(screen.alongside(_request("bad idea"), upstream()), 10) == "answer"
    with pytest.raises(GuardrailBlocked, match="during_call"):
        await screen.after(_answer())


async def test_an_upstream_failure_cancels_the_during_call_check() -> None:
    checker = Checker("block-bad", gate=asyncio.Event())

    async def upstream() -> str:
        await checker.called.wait()
        raise UpstreamTimeout("upstream timed out")

    screen = _screen("during_call", checker, GuardrailTrail())
    with pytest.raises(UpstreamTimeout):
        await screen.alongside(_request("hi"), upstream())
    await asyncio.wait_for(checker.cancelled.wait(), 10)


async def test_a_failing_service_fails_closed_or_open() -> None:
    down = UpstreamTimeout("bedrock-guardrails upstream timed out")
    trail = GuardrailTrail()
    closed = _screen("pre_call", Checker("x", error=down), trail, timeout=0.5)
    with pytest.raises(GuardrailUnavailable, match=r"timed out after 0\.5s") as info:
        await closed.before(_request("hi"))
    assert info.value.status == 503
    opened = _screen("pre_call", Checker("x", error=down), trail, fail_open=True)
    request = _request("hi")
    assert await opened.before(request) is request
    assert [r["guardrail_status"] for r in trail.runs] == ["guardrail_failed_to_respond"] * 2


class Relay:
    """Stands in for the gateway's relay: records how it ended, as its ``finally`` accounts."""

    def __init__(self, events: list[StreamEvent]) -> None:
        self.events = events
        self.ended_with: BaseException | None = None
        self.closed = False

    async def run(self) -> AsyncIterator[StreamEvent]:
        try:
            for event in self.events:
                yield event
        except BaseException as exc:
            self.ended_with = exc
            raise
        finally:
            self.closed = True


def _stream(text: str) -> list[StreamEvent]:
    return [MessageStart("id", "m"), TextDelta(0, text[:4]), TextDelta(0, text[4:]), MessageStop("end_turn")]


async def test_post_call_refusal_is_thrown_into_the_relay_before_the_first_byte() -> None:
    relay = Relay(_stream("the bad word"))
    screen = _screen("post_call", Checker("block-bad"), GuardrailTrail())
    with pytest.raises(GuardrailBlocked, match="blocked the response"):
        await screen.after_stream(relay.run())
    assert isinstance(relay.ended_with, GuardrailBlocked) and relay.closed


async def test_post_call_masking_replays_the_masked_stream() -> None:
    relay = Relay(_stream("to a@b.co"))
    screen = _screen("post_call", Checker("anonymize-email"), GuardrailTrail(), mask_response=True)
    events = [e async for e in await screen.after_stream(relay.run())]
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta(0, "to {EMAIL}")]
    assert relay.closed and relay.ended_with is None


async def test_a_client_gone_while_buffering_still_closes_the_relay() -> None:
    checker = Checker("block-bad", gate=asyncio.Event())
    relay = Relay(_stream("hello"))
    screen = _screen("post_call", checker, GuardrailTrail())
    task = asyncio.create_task(screen.after_stream(relay.run()))
    await checker.called.wait()  # the whole answer is buffered and being checked
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert relay.closed


def _answer() -> ChatResponse:
    return ChatResponse("id", "m", (TextPart("ok"),))
