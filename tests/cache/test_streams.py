"""Cache entries and streams: answers survive the round trip through bytes; a finished stream
assembles into its answer (and only a finished one); a stored answer replays as events that each
client format's encoder renders and that assemble back into the same answer."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tollgate.cache.entries import decode_chat, decode_vector, encode_chat, encode_vector, token_shares
from tollgate.cache.streams import Assembly, replay_events
from tollgate.canonical import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    MessageStart,
    MessageStop,
    PartStart,
    PartStop,
    ReasoningDelta,
    ReasoningPart,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolArgumentsDelta,
    ToolCallPart,
    Usage,
)
from tollgate.dialects.anthropic import messages as anthropic_messages
from tollgate.dialects.bedrock import converse as bedrock_converse
from tollgate.dialects.openai import chat as openai_chat

ANSWER = ChatResponse(
    id="msg_1",
    model="gpt",
    parts=(
        ReasoningPart("thinking it over", signature="sig"),
        TextPart("It is sunny."),
        ToolCallPart("call_1", "weather", '{"city": "Paris"}'),
    ),
    finish_reason="tool_use",
    usage=Usage(input_tokens=12, output_tokens=20, cache_read_tokens=3, reasoning_tokens=4),
    created=1_700_000_000,
)


def assemble(events: Sequence[StreamEvent]) -> ChatResponse | None:
    assembly = Assembly()
    for event in events:
        assembly.feed(event)
    return assembly.response()


def test_a_chat_entry_round_trips() -> None:
    decoded = decode_chat(encode_chat(ANSWER, 123.5) or b"")
    assert decoded == (ANSWER, 123.5)


def test_answers_the_cache_does_not_keep() -> None:
    assert encode_chat(ChatResponse("i", "m", (ImagePart(url="http://x"),)), 0) is None
    assert encode_chat(ChatResponse("i", "m", (TextPart("partial"),), finish_reason="error"), 0) is None


@pytest.mark.parametrize("data", [b"", b"not json", b'{"v": 99}', b'{"v": 1, "parts": 3}'])
def test_unreadable_entries_read_as_misses(data: bytes) -> None:
    assert decode_chat(data) is None
    assert decode_vector(data) is None


def test_a_vector_entry_round_trips_exactly() -> None:
    vector = (0.1, -2.5e-300, 1 / 3)
    assert decode_vector(encode_vector(vector, 7, 9.0)) == (vector, 7, 9.0)


def test_token_shares_add_up_to_the_batch() -> None:
    assert token_shares(("aaaa", "aa", "a"), 10) == [5, 2, 3]
    assert sum(token_shares(("x" * 7, "y" * 3), 11)) == 11


def test_a_stored_answer_replays_and_assembles_back() -> None:
    assert assemble(replay_events(ANSWER)) == ANSWER


def test_a_streamed_answer_assembles_from_its_deltas() -> None:
    events: list[StreamEvent] = [
        MessageStart("msg_2", "gpt", Usage(input_tokens=5), 7),
        PartStart(0, TextPart("")),
        TextDelta(0, "Hel"),
        TextDelta(0, "lo"),
        PartStop(0),
        PartStart(1, ToolCallPart("c", "f", "")),
        ToolArgumentsDelta(1, '{"a"'),
        ToolArgumentsDelta(1, ": 1}"),
        PartStop(1),
        PartStart(2, ReasoningPart()),
        ReasoningDelta(2, "hmm"),
        ReasoningDelta(2, signature="s"),
        PartStop(2),
        MessageStop("end_turn", Usage()),  # no usage at the end: the start's counts
    ]
    assert assemble(events) == ChatResponse(
        "msg_2", "gpt",
        (TextPart("Hello"), ToolCallPart("c", "f", '{"a": 1}'), ReasoningPart("hmm", "s")),
        "end_turn", Usage(input_tokens=5), 7,
    )


def test_a_stream_without_its_end_or_ending_in_error_assembles_into_nothing() -> None:
    events = replay_events(ANSWER)
    assert assemble(events[:-1]) is None
    assert assemble([*events[:-1], MessageStop("error")]) is None


@pytest.mark.parametrize("dialect", [openai_chat, anthropic_messages, bedrock_converse])
def test_every_client_encoder_renders_a_replay(dialect: object) -> None:
    request = ChatRequest(model="gpt", messages=(Message("user", (TextPart("hi"),)),), stream=True)
    encoder = dialect.stream_encoder(request)  # type: ignore[attr-defined]
    body = b"".join(encoder.encode(e) for e in replay_events(ANSWER)) + encoder.close()
    assert b"It is sunny." in body and b"Paris" in body
