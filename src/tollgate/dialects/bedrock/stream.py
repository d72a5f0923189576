"""Bedrock ConverseStream: the event-stream encoder (canonical events → the frames boto3 expects)
and decoder (the Bedrock upstream's frames → canonical events); the stop-reason and usage
mappings they share with whole answers are in ``response``.

``converse`` is the dialect module; it re-exports the classes here through
``stream_encoder`` and ``stream_decoder``. Frames are AWS event-stream messages whose
``:event-type`` is one of messageStart, contentBlockStart, contentBlockDelta, contentBlockStop,
messageStop, metadata and whose payload is that event's JSON object (botocore's
``ConverseStreamOutput`` shapes). Errors are mapped in ``errors``. Imports
``canonical``, ``errors`` and ``framing`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tollgate.canonical import (
    FinishReason,
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
from tollgate.dialects.bedrock.errors import PROVIDER, STREAM_EXCEPTIONS, error_from_aws
from tollgate.dialects.bedrock.response import (
    FINISH_TO_BEDROCK,
    NATIVE,
    finish_from_bedrock,
    int_field,
    native_fields,
    parse_usage,
    render_usage,
)
from tollgate.errors import GatewayError, StreamTruncated, UpstreamError
from tollgate.framing.eventstream import (
    CONTENT_TYPE,
    EventStreamDecoder,
    EventStreamError,
    EventStreamMessage,
    encode_event,
    encode_exception,
)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""




def _event(event_type: str, payload: Mapping[str, Any]) -> bytes:
    return encode_event(event_type, orjson.dumps(payload))


# ---- encoder (client side) ---------------------------------------------------------------------


class BedrockStreamEncoder:
    """Canonical events → ConverseStream frames. Block indexes are renumbered 0, 1, 2, … in
    order of appearance, whatever the upstream used; text and reasoning blocks get no
    contentBlockStart (Bedrock sends none for them)."""

    content_type = CONTENT_TYPE
    __slots__ = ("_indexes", "_next", "_open", "_started")

    def __init__(self) -> None:
        self._indexes: dict[int, int] = {}
        self._next = 0
        self._open: set[int] = set()
        self._started = False

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, MessageStart):
            return self._start()
        out = self._start()
        if isinstance(event, PartStart):
            out += self._part_start(event)
        elif isinstance(event, TextDelta):
            if event.text:
                out += self._delta(event.index, {"text": event.text})
        elif isinstance(event, ToolArgumentsDelta):
            if event.json:
                out += self._delta(event.index, {"toolUse": {"input": event.json}})
        elif isinstance(event, ReasoningDelta):
            out += self._reasoning(event)
        elif isinstance(event, PartStop):
            index = self._indexes.get(event.index)
            if index is not None and index in self._open:
                self._open.discard(index)
                out += _event("contentBlockStop", {"contentBlockIndex": index})
        else:
            out += self._message_stop(event)
        return out

    def error(self, err: GatewayError) -> bytes:
        exception_type = STREAM_EXCEPTIONS.get(err.kind, "validationException")
        return encode_exception(exception_type, orjson.dumps({"message": err.message}))

    def close(self) -> bytes:
        return b""

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return _event("messageStart", {"role": "assistant"})

    def _allocate(self, canonical_index: int) -> int:
        index = self._next
        self._next += 1
        self._indexes[canonical_index] = index
        self._open.add(index)
        return index

    def _index(self, canonical_index: int) -> int:
        index = self._indexes.get(canonical_index)
        return self._allocate(canonical_index) if index is None else index

    def _part_start(self, event: PartStart) -> bytes:
        index = self._allocate(event.index)
        part = event.part
        if not isinstance(part, ToolCallPart):
            return b""
        start = {"toolUse": {"toolUseId": part.id, "name": part.name}}
        out = _event("contentBlockStart", {"contentBlockIndex": index, "start": start})
        # Some upstreams deliver whole arguments with the call itself.
        if part.arguments and part.arguments != "{}":
            out += self._delta(event.index, {"toolUse": {"input": part.arguments}})
        return out

    def _delta(self, canonical_index: int, delta: Mapping[str, Any]) -> bytes:
        index = self._index(canonical_index)
        return _event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta})

    def _reasoning(self, event: ReasoningDelta) -> bytes:
        out = b""
        if event.text:
            out += self._delta(event.index, {"reasoningContent": {"text": event.text}})
        if event.signature:
            out += self._delta(event.index, {"reasoningContent": {"signature": event.signature}})
        if event.redacted:
            out += self._delta(event.index, {"reasoningContent": {"redactedContent": event.redacted}})
        return out

    def _message_stop(self, event: MessageStop) -> bytes:
        out = b"".join(_event("contentBlockStop", {"contentBlockIndex": i}) for i in sorted(self._open))
        self._open.clear()
        native = event.native if event.native_dialect == NATIVE else {}
        stop_reason = native.get("stopReason") or FINISH_TO_BEDROCK[event.finish_reason]
        out += _event("messageStop", {"stopReason": stop_reason})
        metadata: dict[str, Any] = {"usage": render_usage(event.usage), "metrics": {"latencyMs": 0}}
        if "trace" in native:
            metadata["trace"] = native["trace"]
        return out + _event("metadata", metadata)


# ---- decoder (upstream side) -------------------------------------------------------------------


class BedrockStreamDecoder:
    """ConverseStream bytes → canonical events. Bedrock sends the stop reason (messageStop)
    before the usage (metadata); one ``MessageStop`` is emitted once both are known, or at
    ``finish`` if the metadata never came."""

    __slots__ = (
        "_done", "_frames", "_native", "_pending", "_started", "_stop_reason", "_stop_sequence", "_usage",
    )  # fmt: skip

    def __init__(self) -> None:
        self._frames = EventStreamDecoder()
        self._started: set[int] = set()
        self._stop_reason: FinishReason | None = None
        self._stop_sequence: str | None = None
        self._usage: Usage | None = None
        self._native: dict[str, Any] = {}
        self._done = False
        self._pending: GatewayError | None = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        if self._pending is not None:
            raise self._pending
        try:
            messages = self._frames.feed(chunk)
        except EventStreamError as exc:
            raise UpstreamError(f"malformed Bedrock event stream: {exc}", provider=PROVIDER) from exc
        out: list[StreamEvent] = []
        try:
            for message in messages:
                self._message(message, out)
        except GatewayError as exc:
            if not out:
                raise
            # Deliver what arrived before the exception frame in the same read; raise next call.
            self._pending = exc
        return out

    def finish(self) -> list[StreamEvent]:
        if self._pending is not None:
            raise self._pending
        try:
            self._frames.finish()
        except EventStreamError as exc:
            raise StreamTruncated(f"Bedrock stream cut off: {exc}", provider=PROVIDER) from exc
        if self._done or self._stop_reason is None:
            return []  # no messageStop: no MessageStop, so the stream reads as truncated
        self._done = True
        return [self._stop(self._stop_reason, self._usage or Usage())]

    def _message(self, message: EventStreamMessage, out: list[StreamEvent]) -> None:
        kind = message.message_type
        if kind == "exception":
            text = _error_message(message.payload)
            raise error_from_aws(message.exception_type or "InternalServerException", text, 500)
        if kind == "error":
            code, detail = message.headers.get(":error-code"), message.headers.get(":error-message")
            raise UpstreamError(f"Bedrock stream error {code!s}: {detail!s}", provider=PROVIDER)
        try:
            data = orjson.loads(message.payload)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError("Bedrock stream event is not JSON", provider=PROVIDER) from exc
        if not isinstance(data, dict):
            return
        event_type = message.event_type
        if event_type == "messageStart":
            out.append(MessageStart("", ""))
        elif event_type == "contentBlockStart":
            self._block_start(data, out)
        elif event_type == "contentBlockDelta":
            self._block_delta(data, out)
        elif event_type == "contentBlockStop":
            index = int_field(data.get("contentBlockIndex"))
            if index in self._started:
                self._started.discard(index)
                out.append(PartStop(index))
        elif event_type == "messageStop":
            self._stop_reason = finish_from_bedrock(data.get("stopReason"))
            self._native.update(native_fields(data.get("stopReason"), None))
            extra = data.get("additionalModelResponseFields")
            if isinstance(extra, dict) and isinstance(extra.get("stop_sequence"), str):
                self._stop_sequence = extra["stop_sequence"]
            self._maybe_stop(out)
        elif event_type == "metadata":
            self._usage = parse_usage(data.get("usage"))
            self._native.update(native_fields(None, data.get("trace")))
            self._maybe_stop(out)

    def _maybe_stop(self, out: list[StreamEvent]) -> None:
        if self._stop_reason is not None and self._usage is not None and not self._done:
            self._done = True
            out.append(self._stop(self._stop_reason, self._usage))

    def _stop(self, reason: FinishReason, usage: Usage) -> MessageStop:
        native = self._native
        return MessageStop(reason, usage, self._stop_sequence, native, NATIVE if native else None)

    def _block_start(self, data: dict[str, Any], out: list[StreamEvent]) -> None:
        index = int_field(data.get("contentBlockIndex"))
        start = data.get("start")
        tool = start.get("toolUse") if isinstance(start, dict) else None
        if isinstance(tool, dict):
            ident, name = tool.get("toolUseId"), tool.get("name")
            self._started.add(index)
            out.append(PartStart(index, ToolCallPart(_text(ident), _text(name), "")))

    def _block_delta(self, data: dict[str, Any], out: list[StreamEvent]) -> None:
        index = int_field(data.get("contentBlockIndex"))
        delta = data.get("delta")
        if not isinstance(delta, dict):
            return
        text = delta.get("text")
        if isinstance(text, str):
            self._ensure(index, TextPart(""), out)
            out.append(TextDelta(index, text))
            return
        tool = delta.get("toolUse")
        if isinstance(tool, dict):
            self._ensure(index, ToolCallPart("", "", ""), out)
            arguments = tool.get("input")
            out.append(ToolArgumentsDelta(index, arguments if isinstance(arguments, str) else ""))
            return
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict):
            self._ensure(index, ReasoningPart(), out)
            out.append(_reasoning_delta(index, reasoning))

    def _ensure(
        self, index: int, part: TextPart | ToolCallPart | ReasoningPart, out: list[StreamEvent]
    ) -> None:
        if index not in self._started:
            self._started.add(index)
            out.append(PartStart(index, part))


def _reasoning_delta(index: int, reasoning: dict[str, Any]) -> ReasoningDelta:
    text, signature, redacted = (
        reasoning.get("text"),
        reasoning.get("signature"),
        reasoning.get("redactedContent"),
    )
    return ReasoningDelta(
        index,
        text if isinstance(text, str) else "",
        signature if isinstance(signature, str) else None,
        redacted if isinstance(redacted, str) else None,
    )


def _error_message(payload: bytes) -> str:
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.decode("utf-8", errors="replace")
    if isinstance(data, dict):
        for key in ("message", "Message"):
            if isinstance(data.get(key), str):
                return str(data[key])
    return "Bedrock stream error"
