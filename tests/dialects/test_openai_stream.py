"""OpenAI chat streaming: chunk decoder (upstream SSE → events) and encoder (events → client SSE)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from tollgate.canonical import (
    ChatRequest,
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
from tollgate.dialects.openai import chat as openai_chat
from tollgate.errors import ContextWindowExceeded, RateLimited, UpstreamError, UpstreamRateLimited
from tollgate.framing.sse import SseParser

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai"
TRANSCRIPT = (FIXTURES / "stream_tool_call.sse").read_bytes()

EXPECTED_EVENTS: list[StreamEvent] = [
    MessageStart("chatcmpl-BQ7xTvdN2wGxYc9aY3Ty6nCw1Df0A", "gpt-4o-2024-08-06", created=1745000000),
    PartStart(0, ToolCallPart("call_ujD3b6QmZ6Fz3ZJ4bSd7tBp0", "get_weather", "")),
    ToolArgumentsDelta(0, '{"'),
    ToolArgumentsDelta(0, "city"),
    ToolArgumentsDelta(0, '":"'),
    ToolArgumentsDelta(0, "Paris"),
    ToolArgumentsDelta(0, '"}'),
    PartStop(0),
    PartStart(1, ToolCallPart("call_q3Rk1vYt2ZpW8mN0aLx5cE9s", "get_time", "")),
    ToolArgumentsDelta(1, '{"tz'),
    ToolArgumentsDelta(1, '":"CET'),
    ToolArgumentsDelta(1, '"}'),
    PartStop(1),
    MessageStop("tool_use", Usage(input_tokens=93, output_tokens=46, cache_read_tokens=1024)),
]


def _request(include_usage: bool = True, model: str = "my-alias") -> ChatRequest:
    return ChatRequest(
        model=model, messages=(Message("user", (TextPart("x"),)),), stream=True, include_usage=include_usage
    )


def _payloads(raw: bytes) -> list[str]:
    return [event.data for event in SseParser().feed(raw)]


def _chunks(raw: bytes) -> list[ChatCompletionChunk]:
    return [ChatCompletionChunk.model_validate(orjson.loads(d)) for d in _payloads(raw) if d != "[DONE]"]


def _encode(events: list[StreamEvent], request: ChatRequest) -> bytes:
    encoder = openai_chat.stream_encoder(request)
    return b"".join(encoder.encode(e) for e in events) + encoder.close()


# ---- decoder -----------------------------------------------------------------------------------


def test_decode_tool_call_transcript() -> None:
    decoder = openai_chat.stream_decoder()
    events = decoder.feed(TRANSCRIPT)
    assert events + decoder.finish() == EXPECTED_EVENTS
    assert isinstance(events[-1], MessageStop)  # [DONE] releases the stop, not finish()


def test_decode_byte_by_byte_gives_the_same_events() -> None:
    decoder = openai_chat.stream_decoder()
    events: list[StreamEvent] = []
    for i in range(len(TRANSCRIPT)):
        events.extend(decoder.feed(TRANSCRIPT[i : i + 1]))
    assert events + decoder.finish() == EXPECTED_EVENTS


def test_decode_without_done_gives_no_stop() -> None:
    # The finish reason and usage arrived, but the body ended before [DONE]: the stream was cut,
    # so no MessageStop (the gateway then ends the client's stream with an error event).
    body = TRANSCRIPT.replace(b"data: [DONE]\n\n", b"")
    decoder = openai_chat.stream_decoder()
    events = decoder.feed(body)
    assert not any(isinstance(e, MessageStop) for e in events)
    assert decoder.finish() == []


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
    payload: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "created": 5, "model": "m"}
    payload["choices"] = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    payload.update(extra)
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def test_decode_reasoning_then_text() -> None:
    body = (
        _chunk({"role": "assistant", "content": ""})
        + _chunk({"reasoning_content": "think"})
        + _chunk({"reasoning_content": "ing"})
        + _chunk({"content": "Hel"})
        + _chunk({"content": "lo"})
        + _chunk({}, "length")
        + b"data: [DONE]\n\n"
    )
    decoder = openai_chat.stream_decoder()
    assert decoder.feed(body) + decoder.finish() == [
        MessageStart("c1", "m", created=5),
        PartStart(0, ReasoningPart()),
        ReasoningDelta(0, "think"),
        ReasoningDelta(0, "ing"),
        PartStop(0),
        PartStart(1, TextPart("")),
        TextDelta(1, "Hel"),
        TextDelta(1, "lo"),
        PartStop(1),
        MessageStop("max_tokens", Usage()),
    ]


def test_decode_cut_mid_part_closes_the_part_without_stop() -> None:
    decoder = openai_chat.stream_decoder()
    events = decoder.feed(_chunk({"content": "cut"}))
    tail = decoder.finish()
    assert events[-1] == TextDelta(0, "cut")
    assert tail == [PartStop(0)]


def test_decode_in_stream_error_raises_mapped_error() -> None:
    decoder = openai_chat.stream_decoder()
    decoder.feed(_chunk({"content": "a"}))
    error = (
        b'data: {"error": {"message": "Rate limit exceeded", "type": "rate_limit_error", "code": "429"}}\n\n'
    )
    with pytest.raises(UpstreamRateLimited) as info:
        decoder.feed(error)
    assert info.value.message == "Rate limit exceeded"
    context = b'data: {"error": {"message": "too long", "code": "context_length_exceeded"}}\n\n'
    with pytest.raises(ContextWindowExceeded):
        openai_chat.stream_decoder().feed(context)


def test_decode_empty_stream_raises() -> None:
    decoder = openai_chat.stream_decoder()
    assert decoder.feed(b": keep-alive\n\n") == []
    with pytest.raises(UpstreamError):
        decoder.finish()


def test_decode_malformed_chunk_raises() -> None:
    with pytest.raises(UpstreamError):
        openai_chat.stream_decoder().feed(b"data: {oops\n\n")


# ---- encoder -----------------------------------------------------------------------------------


def test_encoder_output_parses_with_openai_sdk() -> None:
    raw = _encode(EXPECTED_EVENTS, _request())
    assert raw.endswith(b"data: [DONE]\n\n")
    chunks = _chunks(raw)
    assert {(c.id, c.model, c.created, c.object) for c in chunks} == {
        ("chatcmpl-BQ7xTvdN2wGxYc9aY3Ty6nCw1Df0A", "my-alias", 1745000000, "chat.completion.chunk")
    }
    first = chunks[0].choices[0].delta
    assert (first.role, first.content) == ("assistant", "")
    opening = chunks[1].choices[0].delta.tool_calls
    assert opening is not None and opening[0].index == 0 and opening[0].id == "call_ujD3b6QmZ6Fz3ZJ4bSd7tBp0"
    assert opening[0].function is not None and opening[0].function.name == "get_weather"
    assert opening[0].function.arguments == ""
    finish = chunks[-2]
    assert finish.choices[0].finish_reason == "tool_calls" and finish.choices[0].delta.content is None
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == [] and usage_chunk.usage is not None
    assert (usage_chunk.usage.prompt_tokens, usage_chunk.usage.completion_tokens) == (1117, 46)
    assert usage_chunk.usage.total_tokens == 1163


def test_decoder_then_encoder_reproduces_an_equivalent_stream() -> None:
    decoder = openai_chat.stream_decoder()
    events = decoder.feed(TRANSCRIPT) + decoder.finish()
    raw = _encode(events, _request(model="gpt-4o-2024-08-06"))

    def final(stream: bytes) -> Any:
        state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
        for chunk in _chunks(stream):
            list(state.handle_chunk(chunk))
        return state.get_final_completion()

    ours, theirs = final(raw), final(TRANSCRIPT)
    assert ours.choices[0].finish_reason == theirs.choices[0].finish_reason == "tool_calls"
    ours_calls = [(t.id, t.function.name, t.function.arguments) for t in ours.choices[0].message.tool_calls]
    theirs_calls = [
        (t.id, t.function.name, t.function.arguments) for t in theirs.choices[0].message.tool_calls
    ]
    assert (
        ours_calls
        == theirs_calls
        == [
            ("call_ujD3b6QmZ6Fz3ZJ4bSd7tBp0", "get_weather", '{"city":"Paris"}'),
            ("call_q3Rk1vYt2ZpW8mN0aLx5cE9s", "get_time", '{"tz":"CET"}'),
        ]
    )
    usage = ours.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1117, 46, 1163)
    assert usage.prompt_tokens_details.cached_tokens == 1024
    assert usage.completion_tokens_details.reasoning_tokens == 0
    # Same number of argument fragments as the upstream sent: nothing buffered or merged.
    assert len(_chunks(raw)) == len(_chunks(TRANSCRIPT)) + 1  # plus the opening role chunk


def test_encoder_handles_anthropic_style_events_with_sparse_indexes() -> None:
    events: list[StreamEvent] = [
        MessageStart("msg_01", "claude-sonnet", created=1700000000),
        PartStart(3, ReasoningPart()),
        ReasoningDelta(3, "plan"),
        ReasoningDelta(3, "", signature="sig"),
        PartStop(3),
        PartStart(7, TextPart("")),
        TextDelta(7, "Hi"),
        PartStop(7),
        PartStart(9, ToolCallPart("toolu_1", "lookup", "")),
        ToolArgumentsDelta(9, ""),
        ToolArgumentsDelta(9, '{"q":1}'),
        PartStop(9),
        PartStart(12, ToolCallPart("toolu_2", "other", "")),
        ToolArgumentsDelta(12, "{}"),
        PartStop(12),
        MessageStop("tool_use", Usage(input_tokens=3, output_tokens=4)),
    ]
    raw = _encode(events, _request(include_usage=False))
    chunks = _chunks(raw)
    deltas = [c.choices[0].delta.model_dump(exclude_none=True) for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "plan"},
        {"content": "Hi"},
        {"tool_calls": [{"index": 0, "id": "toolu_1", "type": "function",
                         "function": {"name": "lookup", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"q":1}'}}]},
        {"tool_calls": [{"index": 1, "id": "toolu_2", "type": "function",
                         "function": {"name": "other", "arguments": ""}}]},
        {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
        {},
    ]  # fmt: skip
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert all(c.usage is None for c in chunks)  # include_usage was not asked for
    assert all(c.model == "my-alias" and c.id == "msg_01" for c in chunks)


def test_encoder_error_and_close() -> None:
    encoder = openai_chat.stream_encoder(_request())
    assert encoder.content_type == "text/event-stream"
    raw = encoder.error(RateLimited("slow down", retry_after=1))
    assert raw.startswith(b"data: ") and raw.endswith(b"\n\n")
    assert orjson.loads(raw[6:]) == {
        "error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": "429"}
    }
    assert encoder.close() == b"data: [DONE]\n\n"


def test_encoder_text_stream_accumulates_in_sdk() -> None:
    events: list[StreamEvent] = [
        MessageStart("chatcmpl-9", "gpt-4o", created=1),
        TextDelta(0, "Hello"),
        TextDelta(0, ""),
        TextDelta(0, " world"),
        MessageStop("end_turn", Usage(input_tokens=2, output_tokens=2)),
    ]
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in _chunks(_encode(events, _request())):
        list(state.handle_chunk(chunk))
    completion = state.get_final_completion()
    assert completion.choices[0].message.content == "Hello world"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 4


def test_decoder_delivers_events_read_together_with_a_later_error() -> None:
    decoder = openai_chat.stream_decoder()
    chunk = (
        b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[{"index":0,"delta":{"content":"partial"},"finish_reason":null}]}\n\n'
        b'data: {"error":{"message":"upstream broke","type":"server_error","code":"500"}}\n\n'
    )
    events = decoder.feed(chunk)
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta(0, "partial")]
    with pytest.raises(UpstreamError, match="upstream broke"):
        decoder.finish()
