"""Stored turns: every canonical part kind survives the trip to JSON and back; streamed answers
are reassembled into the message a whole answer would have been."""

from __future__ import annotations

import orjson
import pytest

from tollgate.canonical import (
    ChatResponse,
    DocumentPart,
    ImagePart,
    Message,
    MessageStart,
    MessageStop,
    PartStart,
    PartStop,
    ReasoningDelta,
    ReasoningPart,
    TextDelta,
    TextPart,
    ToolArgumentsDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from tollgate.conversations.assembly import AnswerAssembly
from tollgate.conversations.turns import message_json, message_of, system_json, system_of
from tollgate.errors import GatewayError
from tollgate.providers import fake

MESSAGES = [
    Message("user", (TextPart("hi", cache_control=True), ImagePart("image/jpeg", data="AAAA", detail="low"))),
    Message(
        "user", (ImagePart(url="https://example.com/a.png"), DocumentPart("application/pdf", "JVBE", "a.pdf"))
    ),
    Message(
        "assistant",
        (
            ReasoningPart("think", signature="sig"),
            ReasoningPart(redacted="opaque"),
            TextPart("ok"),
            ToolCallPart("call_1", "lookup", '{"q": 1}'),
        ),
    ),
    Message("user", (ToolResultPart("call_1", (TextPart("42"),), is_error=True),), name="alice"),
]


@pytest.mark.parametrize("message", MESSAGES)
def test_every_part_kind_round_trips_through_stored_json(message: Message) -> None:
    stored = orjson.loads(orjson.dumps(message_json(message)))  # as a JSON column gives it back
    assert message_of(stored) == message


def test_system_prompts_round_trip() -> None:
    system = (TextPart("be brief"), TextPart("be kind", cache_control=True))
    assert system_of(orjson.loads(orjson.dumps(system_json(system)))) == system
    assert system_of(None) == ()


def test_unknown_stored_kinds_are_refused_not_dropped() -> None:
    with pytest.raises(GatewayError, match="newer tollgate"):
        message_of({"role": "user", "parts": [{"kind": "hologram"}]})


def test_a_stream_reassembles_into_the_whole_answer() -> None:
    answer = ChatResponse("r1", "m", (TextPart("Hello there world"),), usage=Usage(1, 3))
    assembly = AnswerAssembly()
    for event in fake.stream_events(answer):
        assembly.add(event)
    assert assembly.complete
    assert assembly.message() == Message("assistant", answer.parts)


def test_tool_calls_and_reasoning_are_reassembled_in_part_order() -> None:
    events = [
        MessageStart("r", "m"),
        PartStart(0, ReasoningPart()),
        ReasoningDelta(0, "let me "),
        ReasoningDelta(0, "think", signature="sig"),
        PartStop(0),
        PartStart(1, ToolCallPart("c1", "lookup", "")),
        ToolArgumentsDelta(1, '{"q"'),
        ToolArgumentsDelta(1, ": 1}"),
        PartStop(1),
        PartStart(2, ToolCallPart("c2", "noargs", "")),
        PartStop(2),
    ]
    assembly = AnswerAssembly()
    for event in events:
        assembly.add(event)
    assert not assembly.complete  # no MessageStop yet: a cut stream is never recorded
    assembly.add(MessageStop("tool_use"))
    assert assembly.complete
    assert assembly.message().parts == (
        ReasoningPart("let me think", "sig"),
        ToolCallPart("c1", "lookup", '{"q": 1}'),
        ToolCallPart("c2", "noargs", "{}"),
    )


def test_text_deltas_without_a_part_start_are_kept() -> None:
    assembly = AnswerAssembly()
    for event in (TextDelta(0, "a"), TextDelta(0, "b"), MessageStop("end_turn")):
        assembly.add(event)
    assert assembly.message() == Message("assistant", (TextPart("ab"),))
