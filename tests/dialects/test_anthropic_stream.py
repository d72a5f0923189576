"""Anthropic Messages streaming: the upstream SSE decoder and the client SSE encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from pydantic import TypeAdapter

from tollgate.canonical import (
    ChatRequest,
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
from tollgate.dialects.anthropic import messages as dialect
from tollgate.errors import InvalidRequest, UpstreamError, UpstreamRateLimited, UpstreamUnavailable
from tollgate.framing.sse import SseParser

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"
TRANSCRIPT = (FIXTURES / "stream_thinking_tool.sse").read_bytes()
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
START_USAGE = Usage(input_tokens=472, output_tokens=2, cache_read_tokens=1024)

EXPECTED_EVENTS: list[StreamEvent] = [
    MessageStart("msg_01TG4fV1qvJW8mTr8CXm9M2n", "claude-sonnet-4-5-20250929", START_USAGE),
    PartStart(0, ReasoningPart("", None)),
    ReasoningDelta(0, text="The user asks about Paris weather. "),
    ReasoningDelta(0, text="I will call get_weather."),
    ReasoningDelta(0, signature=SIGNATURE),
    PartStop(0),
    PartStart(1, TextPart("")),
    TextDelta(1, "Let me check "),
    TextDelta(1, "the weather."),
    PartStop(1),
    PartStart(2, ToolCallPart("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", "")),
    ToolArgumentsDelta(2, ""),
    ToolArgumentsDelta(2, '{"location": "Par'),
    ToolArgumentsDelta(2, 'is, France"}'),
    PartStop(2),
    MessageStop("tool_use", Usage(input_tokens=472, output_tokens=89, cache_read_tokens=1024)),
]

EVENT_ADAPTER: TypeAdapter[anthropic.types.RawMessageStreamEvent] = TypeAdapter(
    anthropic.types.RawMessageStreamEvent
)


def _decode(body: bytes, chunk: int | None = None) -> list[StreamEvent]:
    decoder = dialect.stream_decoder()
    events: list[StreamEvent] = []
    step = chunk or len(body) or 1
    for start in range(0, len(body), step):
        events += decoder.feed(body[start : start + step])
    return events + decoder.finish()


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _encode(events: list[StreamEvent], model: str = "claude-x") -> bytes:
    encoder = dialect.stream_encoder(ChatRequest(model=model, messages=()))
    assert encoder.content_type == "text/event-stream"
    return b"".join(encoder.encode(event) for event in events) + encoder.close()


def _client_events(body: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    """The SSE frames as (event name, JSON), each validated with the SDK's stream event type."""
    parser = SseParser()
    frames = parser.feed(body) + parser.flush()
    out = []
    for frame in frames:
        data = orjson.loads(frame.data)
        assert frame.event == data["type"]
        EVENT_ADAPTER.validate_python(data)
        out.append((frame.event, data))
    return out


def _accumulate(body: bytes) -> anthropic.types.Message:
    """What an Anthropic SDK client ends up with after reading the stream."""
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for _, data in _client_events(body):
        event = EVENT_ADAPTER.validate_python(data)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)
    assert snapshot is not None
    return snapshot


# ---- decoder -----------------------------------------------------------------------------------


def test_decoder_reads_the_transcript() -> None:
    assert _decode(TRANSCRIPT) == EXPECTED_EVENTS


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_decoder_is_independent_of_chunking(chunk: int) -> None:
    assert _decode(TRANSCRIPT, chunk) == EXPECTED_EVENTS
    assert _decode(TRANSCRIPT.replace(b"\n", b"\r\n"), chunk) == EXPECTED_EVENTS


def test_decoder_gives_no_stop_when_message_stop_is_missing() -> None:
    # The body ended early: without the end marker the stream must read as truncated (the
    # gateway turns a stream without MessageStop into an error), not as complete.
    body = TRANSCRIPT[: TRANSCRIPT.index(b"event: message_stop")]
    assert _decode(body) == EXPECTED_EVENTS[:-1]


def test_decoder_finish_with_nothing_returns_nothing() -> None:
    decoder = dialect.stream_decoder()
    assert decoder.feed(b'event: ping\ndata: {"type": "ping"}\n\n') == []
    assert decoder.finish() == []


def _frame(data: dict[str, Any]) -> bytes:
    return _sse(str(data["type"]), data)


def _block_start(index: int, block: dict[str, Any]) -> bytes:
    return _frame({"type": "content_block_start", "index": index, "content_block": block})


def test_decoder_takes_cumulative_usage_from_message_delta() -> None:
    start_usage = {"input_tokens": 5, "output_tokens": 1}
    end_usage = {"output_tokens": 3, "input_tokens": 9, "cache_creation_input_tokens": 4}
    body = (
        _frame({"type": "message_start", "message": {"id": "m", "model": "x", "usage": start_usage}})
        + _frame(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
                "usage": end_usage,
            }
        )
        + _frame({"type": "message_stop"})
    )
    assert _decode(body)[-1] == MessageStop(
        "stop_sequence", Usage(input_tokens=9, output_tokens=3, cache_write_tokens=4), "END"
    )


def test_decoder_skips_server_tool_blocks_and_reads_redacted_thinking() -> None:
    server_call = {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}
    body = (
        _block_start(0, server_call)
        + _frame(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": "{}"},
            }
        )
        + _frame({"type": "content_block_stop", "index": 0})
        + _block_start(1, {"type": "redacted_thinking", "data": "opaque"})
        + _frame({"type": "content_block_stop", "index": 1})
    )
    assert _decode(body) == [PartStart(1, ReasoningPart(redacted="opaque")), PartStop(1)]


def test_decoder_raises_the_error_event() -> None:
    decoder = dialect.stream_decoder()
    error = _frame({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    with pytest.raises(UpstreamUnavailable) as info:
        decoder.feed(error)
    assert (info.value.message, info.value.provider) == ("Overloaded", "anthropic")


def test_decoder_hands_over_events_before_a_late_error() -> None:
    start = TRANSCRIPT[: TRANSCRIPT.index(b"event: content_block_start")]
    error = b'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"slow"}}\n\n'
    decoder = dialect.stream_decoder()
    assert decoder.feed(start + error) == EXPECTED_EVENTS[:1]
    with pytest.raises(UpstreamRateLimited):
        decoder.finish()


def test_decoder_rejects_broken_json() -> None:
    decoder = dialect.stream_decoder()
    with pytest.raises(UpstreamError):
        decoder.feed(b"event: message_start\ndata: {nope\n\n")


# ---- encoder -----------------------------------------------------------------------------------


def test_decoder_then_encoder_reproduces_the_transcript() -> None:
    reencoded = _client_events(_encode(_decode(TRANSCRIPT)))
    original = [
        (name, data)
        for name, data in _client_events(TRANSCRIPT.replace(b'event: ping\ndata: {"type": "ping"}\n\n', b""))
    ]
    # message_start usage carries only the fields the canonical model keeps.
    original[0][1]["message"]["usage"].pop("service_tier")
    original[0][1]["message"]["usage"]["cache_creation_input_tokens"] = 0
    assert reencoded == original


def test_sdk_accumulates_the_reencoded_stream() -> None:
    message = _accumulate(_encode(_decode(TRANSCRIPT)))
    assert message.id == "msg_01TG4fV1qvJW8mTr8CXm9M2n"
    thinking, text, call = message.content
    assert isinstance(thinking, anthropic.types.ThinkingBlock)
    assert thinking.thinking == "The user asks about Paris weather. I will call get_weather."
    assert thinking.signature == SIGNATURE
    assert isinstance(text, anthropic.types.TextBlock)
    assert text.text == "Let me check the weather."
    assert isinstance(call, anthropic.types.ToolUseBlock)
    assert call.input == {"location": "Paris, France"}
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (472, 89)
    assert message.usage.cache_read_input_tokens == 1024


def test_encoder_handles_openai_shaped_events() -> None:
    # OpenAI-sourced: zero usage up front, text without PartStart, tools opened while text is open,
    # no PartStops, usage only at the end.
    events: list[StreamEvent] = [
        MessageStart("chatcmpl-9", "gpt-4o"),
        TextDelta(0, "Checking"),
        TextDelta(0, "..."),
        PartStart(1, ToolCallPart("call_a", "f", "")),
        ToolArgumentsDelta(1, '{"x":'),
        ToolArgumentsDelta(1, " 1}"),
        PartStart(2, ToolCallPart("call_b", "g", '{"y": 2}')),
        MessageStop("tool_use", Usage(input_tokens=30, output_tokens=12, cache_read_tokens=6)),
    ]
    body = _encode(events)
    frames = _client_events(body)
    assert [name for name, _ in frames] == [
        "message_start",
        "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    start = frames[0][1]["message"]
    assert (start["id"], start["model"], start["usage"]["input_tokens"]) == ("msg_chatcmpl-9", "gpt-4o", 0)
    assert [d["index"] for _, d in frames if "index" in d] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert frames[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "output_tokens": 12,
            "input_tokens": 30,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 6,
        },
    }
    message = _accumulate(body)
    text, first, second = message.content
    assert isinstance(text, anthropic.types.TextBlock)
    assert text.text == "Checking..."
    assert isinstance(first, anthropic.types.ToolUseBlock)
    assert (first.id, first.name, first.input) == ("call_a", "f", {"x": 1})
    assert isinstance(second, anthropic.types.ToolUseBlock)
    assert (second.id, second.input) == ("call_b", {"y": 2})
    assert (message.usage.input_tokens, message.usage.output_tokens) == (30, 12)


def test_encoder_renumbers_sparse_indexes_and_starts_message_itself() -> None:
    events: list[StreamEvent] = [
        PartStart(5, ReasoningPart("thought", "sig")),
        PartStop(5),
        PartStop(5),  # a repeated stop is ignored
        ReasoningDelta(9, redacted="opaque"),
        ReasoningDelta(9, text="ignored: redacted blocks have no deltas"),
        PartStart(12, TextPart("Hello")),
        TextDelta(12, " world"),
        MessageStop("content_filter", Usage(output_tokens=4)),
    ]
    frames = _client_events(_encode(events, model="claude-fallback"))
    start = frames[0][1]["message"]
    assert start["model"] == "claude-fallback"
    assert start["id"].startswith("msg_")
    blocks = [d for _, d in frames if d["type"] == "content_block_start"]
    assert [(b["index"], b["content_block"]["type"]) for b in blocks] == [
        (0, "thinking"),
        (1, "redacted_thinking"),
        (2, "text"),
    ]
    assert blocks[1]["content_block"]["data"] == "opaque"
    message_delta = frames[-2][1]
    assert message_delta["delta"]["stop_reason"] == "refusal"
    assert message_delta["usage"] == {"output_tokens": 4}
    message = _accumulate(_encode(events))
    thinking, redacted, text = message.content
    assert isinstance(thinking, anthropic.types.ThinkingBlock)
    assert (thinking.thinking, thinking.signature) == ("thought", "sig")
    assert isinstance(redacted, anthropic.types.RedactedThinkingBlock)
    assert isinstance(text, anthropic.types.TextBlock)
    assert text.text == "Hello world"


def test_encoder_reopens_a_tool_call_interleaved_with_another_block() -> None:
    events: list[StreamEvent] = [
        MessageStart("msg_1", "m", Usage(input_tokens=3)),
        PartStart(0, ToolCallPart("call_a", "f", "")),
        ToolArgumentsDelta(0, "{}"),
        ReasoningDelta(1, text="late thought"),
        ToolArgumentsDelta(0, ""),
        MessageStop("stop_sequence", Usage(input_tokens=3, output_tokens=1), "END"),
    ]
    frames = _client_events(_encode(events))
    blocks = [d["content_block"] for _, d in frames if d["type"] == "content_block_start"]
    assert [b["type"] for b in blocks] == ["tool_use", "thinking", "tool_use"]
    assert blocks[2]["id"] == "call_a"
    assert frames[-2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}
    assert frames[-2][1]["usage"] == {"output_tokens": 1}


def test_encoder_error_event_and_close() -> None:
    encoder = dialect.stream_encoder(ChatRequest(model="m", messages=()))
    body = encoder.error(UpstreamUnavailable("Overloaded"))
    assert body == (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    assert encoder.error(InvalidRequest("bad")).startswith(
        b'event: error\ndata: {"type":"error","error":{"type":"invalid_request_error"'
    )
    assert encoder.close() == b""


def _sdk_client(body: bytes, content_type: str) -> anthropic.Anthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": content_type})

    return anthropic.Anthropic(
        api_key="test",
        base_url="http://gateway",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


def test_official_sdk_streams_the_encoded_bytes() -> None:
    client = _sdk_client(_encode(_decode(TRANSCRIPT)), "text/event-stream")
    with client.messages.stream(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text == "Let me check the weather."
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    assert message.usage.output_tokens == 89


def test_official_sdk_raises_on_the_encoded_error_event() -> None:
    encoder = dialect.stream_encoder(ChatRequest(model="m", messages=()))
    body = encoder.encode(MessageStart("msg_1", "m")) + encoder.error(UpstreamUnavailable("Overloaded"))
    client = _sdk_client(body, "text/event-stream")
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as s,
    ):
        s.until_done()
    assert "Overloaded" in str(info.value)
