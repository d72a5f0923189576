"""Usage read out of provider-native answers relayed by the passthrough routes, without altering
them: Bedrock InvokeModel's ``x-amzn-bedrock-*-token-count`` headers and the stream's
``amazon-bedrock-invocationMetrics``; Anthropic's ``usage`` object and the stream's
``message_start`` / ``message_delta``. A meter also says whether the stream reached its end
(the chunk with the invocation metrics; ``message_stop``), so a cut stream is not taken for a
whole one.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

import orjson

from tollgate.canonical import Usage
from tollgate.dialects.anthropic.response import parse_usage
from tollgate.framing.eventstream import EventStreamDecoder, EventStreamError
from tollgate.framing.sse import SseParser


def bedrock_usage(headers: Mapping[str, str]) -> Usage | None:
    """InvokeModel's usage headers (``x-amzn-bedrock-input-token-count`` / ``-output-``)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_in = lowered.get("x-amzn-bedrock-input-token-count")
    raw_out = lowered.get("x-amzn-bedrock-output-token-count")
    if raw_in is None and raw_out is None:
        return None
    try:
        return Usage(input_tokens=int(raw_in or 0), output_tokens=int(raw_out or 0))
    except ValueError:
        return None


def bedrock_metrics_usage(chunk: object) -> Usage | None:
    """``amazon-bedrock-invocationMetrics`` of a decoded stream chunk (the last one carries it)."""
    if not isinstance(chunk, dict):
        return None
    metrics = chunk.get("amazon-bedrock-invocationMetrics")
    if not isinstance(metrics, dict):
        return None
    tokens_in, tokens_out = metrics.get("inputTokenCount"), metrics.get("outputTokenCount")
    return Usage(
        input_tokens=tokens_in if isinstance(tokens_in, int) else 0,
        output_tokens=tokens_out if isinstance(tokens_out, int) else 0,
    )


def anthropic_event_usage(event: object, usage: Usage | None) -> Usage | None:
    """Usage so far after one Anthropic stream event (or a whole Messages answer)."""
    if not isinstance(event, dict):
        return usage
    if event.get("type") == "message_start" and isinstance(event.get("message"), dict):
        return parse_usage(event["message"].get("usage"), usage or Usage())
    if "usage" in event:  # message_delta, or a non-streamed message
        return parse_usage(event["usage"], usage or Usage())
    return usage


class BedrockMeter:
    """Reads InvokeModelWithResponseStream bytes: usage, and whether the last chunk came."""

    def __init__(self) -> None:
        self._decoder: EventStreamDecoder | None = EventStreamDecoder()
        self.usage: Usage | None = None
        self.complete = False

    def feed(self, chunk: bytes) -> None:
        if self._decoder is None:
            return
        try:
            messages = self._decoder.feed(chunk)
        except EventStreamError:
            self._decoder = None  # the client gets the bytes anyway; only metering gives up
            self.complete = True  # and cannot tell a cut stream any more
            return
        for message in messages:
            if message.message_type == "exception":
                self.complete = True  # the upstream said why it ended
            if message.event_type != "chunk":
                continue
            try:
                payload = orjson.loads(message.payload)
                inner = orjson.loads(base64.b64decode(payload.get("bytes", "")))
            except (orjson.JSONDecodeError, ValueError, AttributeError):
                continue
            metrics = bedrock_metrics_usage(inner)
            if metrics is not None:
                self.usage = metrics
                self.complete = True


class AnthropicMeter:
    """Reads Anthropic SSE bytes: usage, and whether ``message_stop`` (or an error event) came."""

    def __init__(self) -> None:
        self._parser = SseParser()
        self.usage: Usage | None = None
        self.complete = False

    def feed(self, chunk: bytes) -> None:
        for event in self._parser.feed(chunk):
            try:
                data = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                continue
            if isinstance(data, dict) and data.get("type") in ("message_stop", "error"):
                self.complete = True
            self.usage = anthropic_event_usage(data, self.usage)
