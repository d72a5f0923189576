"""ConverseStream: the event-stream encoder (checked with real boto3) and the upstream decoder."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import EventStreamError as BotoEventStreamError

from tests.fakes.server import responding
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
from tollgate.dialects.bedrock import converse as bedrock
from tollgate.errors import (
    ContextWindowExceeded,
    GatewayError,
    InvalidRequest,
    StreamTruncated,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tollgate.framing.eventstream import EventStreamDecoder, encode_event, encode_exception

FIXTURES = Path(__file__).parent.parent / "fixtures" / "bedrock"
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
REQUEST = ChatRequest(model=MODEL, messages=(Message("user", (TextPart("hi"),)),), stream=True)

STREAM_EVENTS: list[StreamEvent] = [
    MessageStart("", ""),
    PartStart(0, ReasoningPart()),
    ReasoningDelta(0, "Let me think."),
    ReasoningDelta(0, "", signature="c2ln"),
    PartStop(0),
    PartStart(1, TextPart("")),
    TextDelta(1, "Hello"),
    TextDelta(1, " world"),
    PartStop(1),
    PartStart(2, ToolCallPart("tooluse_1", "get_weather", "")),
    ToolArgumentsDelta(2, '{"city":'),
    ToolArgumentsDelta(2, '"Paris"}'),
    PartStop(2),
    MessageStop("tool_use", Usage(input_tokens=10, output_tokens=20, cache_read_tokens=5)),
]


def fake_bedrock_stream(body: bytes) -> AbstractContextManager[str]:
    """A local HTTP server answering every POST with an event-stream ``body``."""
    return responding(lambda path, _: (200, {"content-type": "application/vnd.amazon.eventstream"}, body))


def converse_stream(body: bytes) -> list[dict[str, Any]]:
    with fake_bedrock_stream(body) as endpoint:
        client = boto3.client(
            "bedrock-runtime",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="y",
            config=Config(retries={"total_max_attempts": 1}),
        )
        messages = [{"role": "user", "content": [{"text": "hi"}]}]
        response = client.converse_stream(modelId=MODEL, messages=messages)
        return list(response["stream"])


def encode_all(events: list[StreamEvent]) -> bytes:
    encoder = bedrock.stream_encoder(REQUEST)
    assert encoder.content_type == "application/vnd.amazon.eventstream"
    return b"".join(encoder.encode(e) for e in events) + encoder.close()


def decode_all(body: bytes, chunk: int) -> list[StreamEvent]:
    decoder = bedrock.stream_decoder()
    events: list[StreamEvent] = []
    for i in range(0, len(body), chunk):
        events.extend(decoder.feed(body[i : i + chunk]))
    return events + decoder.finish()


# ---- encoder ----------------------------------------------------------------------------------


def test_encoder_frames_match_the_golden_stream() -> None:
    assert encode_all(STREAM_EVENTS) == _golden_with_zero_latency()


def _golden_with_zero_latency() -> bytes:
    frames = orjson.loads((FIXTURES / "converse_stream_events.json").read_bytes())
    out = b""
    for event_type, payload in frames:
        if event_type == "metadata":
            # The gateway reports all usage fields and no upstream latency.
            payload = {
                "usage": {
                    "inputTokens": 10,
                    "outputTokens": 20,
                    "totalTokens": 35,
                    "cacheReadInputTokens": 5,
                    "cacheWriteInputTokens": 0,
                },
                "metrics": {"latencyMs": 0},
            }
        out += encode_event(event_type, orjson.dumps(payload))
    return out


def test_boto3_converse_stream_text_tool_use_and_metadata() -> None:
    events = converse_stream(encode_all(STREAM_EVENTS))
    assert events == [
        {"messageStart": {"role": "assistant"}},
        {
            "contentBlockDelta": {
                "delta": {"reasoningContent": {"text": "Let me think."}},
                "contentBlockIndex": 0,
            }
        },
        {"contentBlockDelta": {"delta": {"reasoningContent": {"signature": "c2ln"}}, "contentBlockIndex": 0}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"text": "Hello"}, "contentBlockIndex": 1}},
        {"contentBlockDelta": {"delta": {"text": " world"}, "contentBlockIndex": 1}},
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {
            "contentBlockStart": {
                "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}},
                "contentBlockIndex": 2,
            }
        },
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"city":'}}, "contentBlockIndex": 2}},
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '"Paris"}'}}, "contentBlockIndex": 2}},
        {"contentBlockStop": {"contentBlockIndex": 2}},
        {"messageStop": {"stopReason": "tool_use"}},
        {
            "metadata": {
                "usage": {
                    "inputTokens": 10,
                    "outputTokens": 20,
                    "totalTokens": 35,
                    "cacheReadInputTokens": 5,
                    "cacheWriteInputTokens": 0,
                },
                "metrics": {"latencyMs": 0},
            }
        },
    ]


def test_encoder_renumbers_blocks_and_closes_open_ones() -> None:
    events: list[StreamEvent] = [
        PartStart(4, TextPart("")),
        TextDelta(4, "a"),
        TextDelta(4, ""),
        PartStop(4),
        PartStart(9, ToolCallPart("t1", "f", '{"x":1}')),
        MessageStop("max_tokens", Usage(1, 2)),
    ]
    boto_events = converse_stream(encode_all(events))
    assert boto_events == [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "a"}, "contentBlockIndex": 0}},
        {"contentBlockStop": {"contentBlockIndex": 0}},
        {
            "contentBlockStart": {
                "start": {"toolUse": {"toolUseId": "t1", "name": "f"}},
                "contentBlockIndex": 1,
            }
        },
        {"contentBlockDelta": {"delta": {"toolUse": {"input": '{"x":1}'}}, "contentBlockIndex": 1}},
        {"contentBlockStop": {"contentBlockIndex": 1}},
        {"messageStop": {"stopReason": "max_tokens"}},
        {
            "metadata": {
                "usage": {
                    "inputTokens": 1,
                    "outputTokens": 2,
                    "totalTokens": 3,
                    "cacheReadInputTokens": 0,
                    "cacheWriteInputTokens": 0,
                },
                "metrics": {"latencyMs": 0},
            }
        },
    ]


@pytest.mark.parametrize(
    ("err", "code"),
    [
        (UpstreamRateLimited("slow down"), "throttlingException"),
        (UpstreamUnavailable("busy"), "serviceUnavailableException"),
        (InvalidRequest("bad"), "validationException"),
        (UpstreamTimeout("late"), "modelStreamErrorException"),
        (UpstreamError("boom"), "internalServerException"),
    ],
)
def test_boto3_raises_in_stream_errors(err: GatewayError, code: str) -> None:
    encoder = bedrock.stream_encoder(REQUEST)
    body = encoder.encode(MessageStart("", "")) + encoder.encode(TextDelta(0, "par")) + encoder.error(err)
    seen: list[dict[str, Any]] = []
    with pytest.raises(BotoEventStreamError) as info:
        seen.extend(converse_stream(body))
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["Error"]["Message"] == err.message


def test_error_frame_shape() -> None:
    frame = bedrock.stream_encoder(REQUEST).error(UpstreamRateLimited("slow down"))
    (message,) = EventStreamDecoder().feed(frame)
    assert message.headers == {
        ":exception-type": "throttlingException",
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    assert orjson.loads(message.payload) == {"message": "slow down"}


# ---- decoder ----------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_decoder_reads_the_golden_stream_in_any_chunks(chunk: int) -> None:
    assert decode_all((FIXTURES / "converse_stream.bin").read_bytes(), chunk) == STREAM_EVENTS


def test_golden_bytes_match_the_event_list() -> None:
    frames = orjson.loads((FIXTURES / "converse_stream_events.json").read_bytes())
    expected = b"".join(encode_event(t, orjson.dumps(p)) for t, p in frames)
    assert (FIXTURES / "converse_stream.bin").read_bytes() == expected


def test_encode_decode_round_trip() -> None:
    assert decode_all(encode_all(STREAM_EVENTS), 13) == STREAM_EVENTS


def test_decoder_emits_stop_at_finish_without_metadata() -> None:
    body = encode_event("messageStart", b'{"role":"assistant"}') + encode_event(
        "messageStop", b'{"stopReason":"guardrail_intervened"}'
    )
    decoder = bedrock.stream_decoder()
    assert decoder.feed(body) == [MessageStart("", "")]
    # Bedrock clients get Bedrock's own stop reason back; every other client a content_filter.
    native = {"stopReason": "guardrail_intervened"}
    assert decoder.finish() == [MessageStop("content_filter", Usage(), None, native, "bedrock")]


def test_decoder_redacted_reasoning() -> None:
    body = encode_event(
        "contentBlockDelta",
        b'{"contentBlockIndex":0,"delta":{"reasoningContent":{"redactedContent":"b3Bh"}}}',
    )
    assert bedrock.stream_decoder().feed(body) == [
        PartStart(0, ReasoningPart()),
        ReasoningDelta(0, "", redacted="b3Bh"),
    ]


@pytest.mark.parametrize(
    ("exception_type", "message", "cls"),
    [
        ("throttlingException", "Too many tokens per day", UpstreamRateLimited),
        ("serviceUnavailableException", "busy", UpstreamUnavailable),
        ("validationException", "bad input", UpstreamBadRequest),
        ("validationException", "Input is too long for requested model.", ContextWindowExceeded),
        ("modelStreamErrorException", "model broke", UpstreamError),
        ("internalServerException", "oops", UpstreamError),
    ],
)
def test_decoder_raises_on_exception_frames(
    exception_type: str, message: str, cls: type[GatewayError]
) -> None:
    decoder = bedrock.stream_decoder()
    assert decoder.feed(encode_event("messageStart", b'{"role":"assistant"}')) == [MessageStart("", "")]
    with pytest.raises(GatewayError) as info:
        decoder.feed(encode_exception(exception_type, orjson.dumps({"message": message})))
    assert type(info.value) is cls
    assert info.value.message == message


def test_decoder_truncated_stream_is_an_upstream_error() -> None:
    body = encode_event("messageStart", b'{"role":"assistant"}')
    decoder = bedrock.stream_decoder()
    decoder.feed(body[:-3])
    with pytest.raises(UpstreamError, match="cut off"):
        decoder.finish()


def test_decoder_stream_without_message_stop_gives_no_stop() -> None:
    decoder = bedrock.stream_decoder()
    events = decoder.feed(encode_event("messageStart", b'{"role":"assistant"}'))
    assert events == [MessageStart("", "")]
    assert decoder.finish() == []  # no MessageStop: the gateway reports the stream as truncated


def test_decoder_stream_cut_inside_a_frame_is_truncated() -> None:
    frame = encode_event("messageStart", b'{"role":"assistant"}')
    decoder = bedrock.stream_decoder()
    decoder.feed(frame[:-3])
    with pytest.raises(StreamTruncated, match="cut off"):
        decoder.finish()


def test_decoder_corrupted_frame_is_an_upstream_error() -> None:
    body = bytearray(encode_event("messageStart", b'{"role":"assistant"}'))
    body[-2] ^= 0x10
    with pytest.raises(UpstreamError, match="malformed Bedrock event stream"):
        bedrock.stream_decoder().feed(bytes(body))
