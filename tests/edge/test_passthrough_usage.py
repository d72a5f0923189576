"""Usage read out of passthrough answers (for metering) and the count_tokens estimate."""

from __future__ import annotations

import base64

import orjson
import pytest

from tollgate.canonical import Usage
from tollgate.edge.count_tokens import parse_count_request
from tollgate.edge.native_usage import (
    AnthropicMeter,
    BedrockMeter,
    anthropic_event_usage,
    bedrock_metrics_usage,
    bedrock_usage,
)
from tollgate.errors import InvalidRequest
from tollgate.framing.eventstream import encode_message
from tollgate.policy.tokens import estimate_input_tokens


def _chunk(payload: object) -> bytes:
    data = orjson.dumps({"bytes": base64.b64encode(orjson.dumps(payload)).decode()})
    headers = ((":event-type", "chunk"), (":content-type", "application/json"), (":message-type", "event"))
    return encode_message(headers, data)


def test_bedrock_usage_headers() -> None:
    headers = {"X-Amzn-Bedrock-Input-Token-Count": "12", "x-amzn-bedrock-output-token-count": "3"}
    assert bedrock_usage(headers) == Usage(input_tokens=12, output_tokens=3)
    assert bedrock_usage({"x-amzn-bedrock-input-token-count": "7"}) == Usage(input_tokens=7)
    assert bedrock_usage({}) is None
    assert bedrock_usage({"x-amzn-bedrock-input-token-count": "x"}) is None


def test_bedrock_metrics() -> None:
    metrics = {"amazon-bedrock-invocationMetrics": {"inputTokenCount": 4, "outputTokenCount": 9}}
    assert bedrock_metrics_usage({"type": "message_stop", **metrics}) == Usage(
        input_tokens=4, output_tokens=9
    )
    assert bedrock_metrics_usage({"type": "message_stop"}) is None
    assert bedrock_metrics_usage([1]) is None


def test_bedrock_meter_reads_split_frames() -> None:
    stream = _chunk({"type": "message_start"}) + _chunk(
        {
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {"inputTokenCount": 2, "outputTokenCount": 5},
        }
    )
    meter = BedrockMeter()
    for i in range(0, len(stream), 7):  # frames cut at arbitrary points
        meter.feed(stream[i : i + 7])
    assert meter.usage == Usage(input_tokens=2, output_tokens=5)


def test_bedrock_meter_gives_up_quietly_on_garbage() -> None:
    meter = BedrockMeter()
    meter.feed(b"\x00\x00\x00\x05garbage-that-is-not-a-frame" * 3)
    meter.feed(_chunk({"amazon-bedrock-invocationMetrics": {"inputTokenCount": 1}}))
    assert meter.usage is None


def test_anthropic_usage_from_message_and_stream() -> None:
    message = {
        "type": "message",
        "usage": {"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 2},
    }
    assert anthropic_event_usage(message, None) == Usage(
        input_tokens=10, output_tokens=4, cache_read_tokens=2
    )
    meter = AnthropicMeter()
    meter.feed(
        b'event: message_start\ndata: {"type":"message_start",'
        b'"message":{"usage":{"input_tokens":7,"output_tokens":1}}}\n\n'
        b'event: ping\ndata: {"type":"ping"}\n\nevent: message_delta\ndata: {"type":"message_delta",'
    )
    meter.feed(b'"delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":12}}\n\n')
    assert meter.usage == Usage(input_tokens=7, output_tokens=12)


def test_estimate_counts_system_messages_and_tools() -> None:
    request = parse_count_request(
        orjson.dumps(
            {
                "model": "m",
                "system": "s" * 8,
                "messages": [{"role": "user", "content": "u" * 20}],
                "tools": [{"name": "t", "description": "dd", "input_schema": {"type": "object"}}],
            }
        )
    )
    assert request.max_tokens == 1
    # request 3 + system 2 + message 4 + text 5 + tool (8 + 1 + 1 + 5)
    assert estimate_input_tokens(request) == 3 + 2 + 4 + 5 + (8 + 1 + 1 + 5)
    tiny = parse_count_request(b'{"model": "m", "messages": [{"role": "user", "content": "a"}]}')
    assert estimate_input_tokens(tiny) == 3 + 4 + 1


@pytest.mark.parametrize(
    ("body", "param"), [(b"[]", "body"), (b"{", None), (b'{"model": "m", "messages": []}', "messages")]
)
def test_count_request_errors_name_the_field(body: bytes, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_count_request(body)
    assert info.value.param == param
