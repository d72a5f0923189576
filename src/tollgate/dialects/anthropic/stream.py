"""Anthropic Messages SSE streams: the encoder (canonical events → the events Anthropic SDK
clients expect) and the decoder (the Anthropic upstream's events → canonical).

``messages`` is the dialect module and hands these out through ``stream_encoder`` and
``stream_decoder``; the message, usage and error shapes are in ``response`` and ``errors``. Imports
only ``canonical``, ``errors`` and ``framing``.
"""

from __future__ import annotations

import uuid
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
from tollgate.dialects.anthropic.errors import ERROR_TYPE_STATUS, error_body, parse_error
from tollgate.dialects.anthropic.response import (
    FINISH_TO_STOP,
    STOP_TO_FINISH,
    message_id,
    parse_usage,
    usage_dict,
)
from tollgate.errors import GatewayError, UpstreamError
from tollgate.framing.sse import SseParser, encode


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return encode(orjson.dumps(payload), name)


class AnthropicStreamEncoder:
    """Canonical events → Anthropic SSE. Blocks are renumbered 0, 1, 2… in order of appearance
    and emitted one after another, whatever order or index scheme the upstream decoder used."""

    content_type = "text/event-stream"

    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._start_usage: Usage | None = None
        self._next_index = 0
        # canonical index → (our block index, block type) for blocks still open
        self._open: dict[int, tuple[int, str]] = {}
        self._tools: dict[int, tuple[str, str]] = {}  # canonical index → (id, name)

    def encode(self, event: StreamEvent) -> bytes:
        out = b"" if self._started or isinstance(event, MessageStart) else self._message_start(None)
        match event:
            case MessageStart():
                out += self._message_start(event)
            case PartStart(index=index, part=part):
                out += self._part_start(index, part)
            case TextDelta(index=index, text=text):
                out += self._ensure_open(index, "text") + self._delta(index, "text_delta", "text", text)
            case ToolArgumentsDelta(index=index, json=chunk):
                out += self._ensure_open(index, "tool_use")
                out += self._delta(index, "input_json_delta", "partial_json", chunk)
            case ReasoningDelta():
                out += self._reasoning_delta(event)
            case PartStop(index=index):
                out += self._close(index)
            case MessageStop():
                out += self._message_end(event)
        return out

    def error(self, err: GatewayError) -> bytes:
        return encode(error_body(err), "error")

    def close(self) -> bytes:
        return b""

    def _message_start(self, event: MessageStart | None) -> bytes:
        if self._started:
            return b""
        self._started = True
        usage = event.usage if event is not None else Usage()
        self._start_usage = usage
        msg_id = message_id(event.id if event is not None and event.id else uuid.uuid4().hex)
        message: dict[str, Any] = {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": (event.model if event is not None and event.model else self._model),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_dict(usage),
        }
        if event is not None and event.session_id is not None:
            message["session_id"] = event.session_id  # the gateway's chat-history session
        return _event("message_start", {"type": "message_start", "message": message})

    def _open_block(self, index: int, block: dict[str, Any]) -> bytes:
        # Anthropic clients expect one block at a time, so a new block ends the previous ones.
        out = b"".join(self._close(other) for other in list(self._open))
        ours = self._next_index
        self._next_index += 1
        self._open[index] = (ours, str(block["type"]))
        start = {"type": "content_block_start", "index": ours, "content_block": block}
        return out + _event("content_block_start", start)

    def _part_start(self, index: int, part: TextPart | ToolCallPart | ReasoningPart) -> bytes:
        if isinstance(part, TextPart):
            out = self._open_block(index, {"type": "text", "text": ""})
            return out + (self._delta(index, "text_delta", "text", part.text) if part.text else b"")
        if isinstance(part, ToolCallPart):
            self._tools[index] = (part.id, part.name)
            out = self._open_block(index, {"type": "tool_use", "id": part.id, "name": part.name, "input": {}})
            if part.arguments:
                out += self._delta(index, "input_json_delta", "partial_json", part.arguments)
            return out
        if part.redacted is not None:
            return self._open_block(index, {"type": "redacted_thinking", "data": part.redacted})
        out = self._open_block(index, {"type": "thinking", "thinking": "", "signature": ""})
        if part.text:
            out += self._delta(index, "thinking_delta", "thinking", part.text)
        if part.signature:
            out += self._delta(index, "signature_delta", "signature", part.signature)
        return out

    def _ensure_open(self, index: int, block_type: str) -> bytes:
        if index in self._open:
            return b""
        if block_type == "text":
            return self._open_block(index, {"type": "text", "text": ""})
        if block_type == "thinking":
            return self._open_block(index, {"type": "thinking", "thinking": "", "signature": ""})
        # Arguments interleaved with another block reopen their call under the same id; without
        # any PartStart there is no id or name, and a stable placeholder keeps the SDK working.
        tool_id, name = self._tools.get(index, (f"toolu_{index}", ""))
        return self._open_block(index, {"type": "tool_use", "id": tool_id, "name": name, "input": {}})

    def _reasoning_delta(self, event: ReasoningDelta) -> bytes:
        index = event.index
        if event.redacted is not None and index not in self._open:
            return self._open_block(index, {"type": "redacted_thinking", "data": event.redacted})
        out = self._ensure_open(index, "thinking")
        if self._open[index][1] != "thinking":
            # Anthropic has no delta for redacted blocks; further pieces cannot be carried.
            return out
        if event.text:
            out += self._delta(index, "thinking_delta", "thinking", event.text)
        if event.signature:
            out += self._delta(index, "signature_delta", "signature", event.signature)
        return out

    def _delta(self, index: int, delta_type: str, key: str, value: str) -> bytes:
        ours = self._open[index][0]
        payload = {"type": "content_block_delta", "index": ours, "delta": {"type": delta_type, key: value}}
        return _event("content_block_delta", payload)

    def _close(self, index: int) -> bytes:
        block = self._open.pop(index, None)
        if block is None:
            return b""
        return _event("content_block_stop", {"type": "content_block_stop", "index": block[0]})

    def _message_end(self, event: MessageStop) -> bytes:
        out = b"".join(self._close(index) for index in list(self._open))
        usage: dict[str, int] = {"output_tokens": event.usage.output_tokens}
        start = self._start_usage or Usage()
        stop = event.usage
        input_side = (stop.input_tokens, stop.cache_read_tokens, stop.cache_write_tokens)
        # OpenAI-style upstreams report input usage only at the end; say it here then.
        if stop.prompt_tokens and input_side != (
            start.input_tokens,
            start.cache_read_tokens,
            start.cache_write_tokens,
        ):
            usage.update(usage_dict(stop))
        stop_reason = FINISH_TO_STOP[event.finish_reason]
        delta = {
            "stop_reason": stop_reason,
            "stop_sequence": event.stop_sequence if stop_reason == "stop_sequence" else None,
        }
        out += _event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        return out + _event("message_stop", {"type": "message_stop"})


class AnthropicStreamDecoder:
    """Anthropic SSE bytes → canonical events. Block indexes are kept as Anthropic numbers them;
    blocks of kinds the canonical model lacks (server tool calls and results) are skipped."""

    def __init__(self) -> None:
        self._sse = SseParser()
        self._usage = Usage()
        self._finish: FinishReason | None = None
        self._stop_sequence: str | None = None
        self._stopped = False
        self._pending_error: GatewayError | None = None
        self._skipped: set[int] = set()

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        return self._handle(self._sse.feed(chunk))

    def finish(self) -> list[StreamEvent]:
        events = self._handle(self._sse.flush())
        if self._pending_error is not None:
            raise self._pending_error
        # Without message_stop the body ended early: no MessageStop, so it reads as truncated.
        return events

    def _handle(self, frames: list[Any]) -> list[StreamEvent]:
        if self._pending_error is not None:
            raise self._pending_error
        events: list[StreamEvent] = []
        for frame in frames:
            if not frame.data:
                continue
            try:
                data = orjson.loads(frame.data)
            except orjson.JSONDecodeError as exc:
                raise UpstreamError("malformed stream event from upstream", provider="anthropic") from exc
            if not isinstance(data, dict):
                continue
            if data.get("type") == "error":
                err = self._error(data, frame.data)
                if not events:
                    raise err
                # Hand over what came before the error first; raise on the next call.
                self._pending_error = err
                return events
            event = self._event(data)
            if event is not None:
                events.append(event)
        return events

    def _error(self, data: dict[str, Any], raw: str) -> GatewayError:
        inner = data.get("error")
        kind = inner.get("type") if isinstance(inner, dict) else None
        status = ERROR_TYPE_STATUS.get(kind, 500) if isinstance(kind, str) else 500
        return parse_error(status, raw.encode(), {})

    def _event(self, data: dict[str, Any]) -> StreamEvent | None:
        match data.get("type"):
            case "message_start":
                return self._message_start(data.get("message"))
            case "content_block_start":
                return self._block_start(data)
            case "content_block_delta":
                return self._block_delta(data)
            case "content_block_stop":
                index = data.get("index")
                if isinstance(index, int) and index not in self._skipped:
                    return PartStop(index)
                return None
            case "message_delta":
                self._message_delta(data)
                return None
            case "message_stop":
                if self._stopped:
                    return None
                self._stopped = True
                return MessageStop(self._finish or "end_turn", self._usage, self._stop_sequence)
        return None  # ping and event types added after this was written

    def _message_start(self, raw: object) -> StreamEvent:
        message: dict[str, Any] = raw if isinstance(raw, dict) else {}
        self._usage = parse_usage(message.get("usage"), Usage())
        msg_id = message.get("id")
        model = message.get("model")
        return MessageStart(
            id=msg_id if isinstance(msg_id, str) else "",
            model=model if isinstance(model, str) else "",
            usage=self._usage,
        )

    def _block_start(self, data: dict[str, Any]) -> StreamEvent | None:
        index = data.get("index")
        block = data.get("content_block")
        if not isinstance(index, int) or not isinstance(block, dict):
            return None
        part: TextPart | ToolCallPart | ReasoningPart
        match block.get("type"):
            case "text":
                part = TextPart(str(block.get("text") or ""))
            case "tool_use":
                part = ToolCallPart(str(block.get("id", "")), str(block.get("name", "")), "")
            case "thinking":
                part = ReasoningPart(str(block.get("thinking") or ""), block.get("signature") or None)
            case "redacted_thinking":
                part = ReasoningPart(redacted=str(block.get("data", "")))
            case _:
                self._skipped.add(index)
                return None
        return PartStart(index, part)

    def _block_delta(self, data: dict[str, Any]) -> StreamEvent | None:
        index = data.get("index")
        delta = data.get("delta")
        if not isinstance(index, int) or not isinstance(delta, dict) or index in self._skipped:
            return None
        match delta.get("type"):
            case "text_delta":
                return TextDelta(index, str(delta.get("text", "")))
            case "input_json_delta":
                return ToolArgumentsDelta(index, str(delta.get("partial_json", "")))
            case "thinking_delta":
                return ReasoningDelta(index, text=str(delta.get("thinking", "")))
            case "signature_delta":
                return ReasoningDelta(index, signature=str(delta.get("signature", "")))
        return None  # citations_delta and future delta kinds

    def _message_delta(self, data: dict[str, Any]) -> None:
        delta = data.get("delta")
        if isinstance(delta, dict):
            reason = delta.get("stop_reason")
            if isinstance(reason, str):
                self._finish = STOP_TO_FINISH.get(reason, "end_turn")
            sequence = delta.get("stop_sequence")
            self._stop_sequence = sequence if isinstance(sequence, str) else None
        # Counts in message_delta are cumulative, so they replace rather than add.
        self._usage = parse_usage(data.get("usage"), self._usage)
        if self._finish is None:
            self._finish = "end_turn"
