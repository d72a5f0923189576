"""OpenAI chat streaming: the ``chat.completion.chunk`` SSE encoder (canonical events → chunks) and
decoder (an upstream's chunks → canonical events). ``chat`` hands them out through
``stream_encoder`` and ``stream_decoder``. Imports ``canonical``, ``errors`` and ``framing`` only.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from tollgate.canonical import (
    ChatRequest,
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
from tollgate.dialects.openai.errors import error_from_payload, error_object
from tollgate.dialects.openai.response import (
    FINISH_FROM_OPENAI,
    FINISH_TO_OPENAI,
    usage_from_openai,
    usage_to_openai,
)
from tollgate.errors import (
    GatewayError,
    UpstreamError,
)
from tollgate.framing import sse

DONE = b"data: [DONE]\n\n"


# ---- usage -------------------------------------------------------------------------------------








# ---- errors ------------------------------------------------------------------------------------






# ---- encoder -----------------------------------------------------------------------------------


class ChunkEncoder:
    """Canonical events → ``chat.completion.chunk`` SSE events for one choice (index 0)."""

    content_type = "text/event-stream"

    __slots__ = ("_head", "_include_usage", "_model", "_tool_indexes")

    def __init__(self, request: ChatRequest) -> None:
        self._model = request.model
        self._include_usage = request.include_usage
        self._head = b""
        # canonical part index → OpenAI tool_calls[].index (0-based count of tool calls)
        self._tool_indexes: dict[int, int] = {}

    def encode(self, event: StreamEvent) -> bytes:
        match event:
            case MessageStart():
                self._start(event.id, event.created)
                first = self._chunk({"role": "assistant", "content": ""})
                if event.session_id is None:
                    return first
                # Only the first chunk names the chat-history session (the AWS gateway's shape).
                session = b',"session_id":' + orjson.dumps(event.session_id)
                return first[: -len(b"}\n\n")] + session + b"}\n\n"
            case TextDelta():
                return self._chunk({"content": event.text}) if event.text else b""
            case ReasoningDelta():
                return self._chunk({"reasoning_content": event.text}) if event.text else b""
            case PartStart():
                return self._part_start(event)
            case ToolArgumentsDelta():
                return self._arguments(event)
            case PartStop():
                return b""
            case MessageStop():
                return self._stop(event)
        return b""

    def error(self, err: GatewayError) -> bytes:
        return sse.encode(orjson.dumps(error_object(err)))

    def close(self) -> bytes:
        return DONE

    def _start(self, message_id: str, created: int) -> None:
        head = orjson.dumps(
            {
                "id": message_id,
                "object": "chat.completion.chunk",
                "created": created or int(time.time()),
                "model": self._model,
                "system_fingerprint": None,
            }
        )
        self._head = b"data: " + head[:-1]

    def _chunk(self, delta: dict[str, object], finish_reason: str | None = None) -> bytes:
        if not self._head:
            self._start("chatcmpl-tollgate", 0)
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return self._head + b',"choices":[' + orjson.dumps(choice) + b"]}\n\n"

    def _part_start(self, event: PartStart) -> bytes:
        part = event.part
        if isinstance(part, ToolCallPart):
            position = len(self._tool_indexes)
            self._tool_indexes[event.index] = position
            # Arguments follow as deltas; "{}" is only ToolCallPart's default, not streamed text.
            arguments = part.arguments if part.arguments != "{}" else ""
            function = {"name": part.name, "arguments": arguments}
            call = {"index": position, "id": part.id, "type": "function", "function": function}
            return self._chunk({"tool_calls": [call]})
        # Text and reasoning parts open silently in OpenAI's format; text given up front is kept.
        if isinstance(part, TextPart) and part.text:
            return self._chunk({"content": part.text})
        if isinstance(part, ReasoningPart) and part.text:
            return self._chunk({"reasoning_content": part.text})
        return b""

    def _arguments(self, event: ToolArgumentsDelta) -> bytes:
        position = self._tool_indexes.get(event.index)
        if position is None or not event.json:
            return b""
        return self._chunk({"tool_calls": [{"index": position, "function": {"arguments": event.json}}]})

    def _stop(self, event: MessageStop) -> bytes:
        out = self._chunk({}, FINISH_TO_OPENAI[event.finish_reason])
        if self._include_usage:
            usage = orjson.dumps(usage_to_openai(event.usage))
            out += self._head + b',"choices":[],"usage":' + usage + b"}\n\n"
        return out


# ---- decoder -----------------------------------------------------------------------------------


class ChunkDecoder:
    """Upstream ``chat.completion.chunk`` SSE bytes → canonical events (choice index 0 only).

    At most one canonical part is open at a time: a new part closes the previous one, which is
    what the Anthropic and Bedrock encoders need. The ``MessageStop`` waits for ``[DONE]`` (or
    the end of the body) because the usage chunk follows the finish reason.
    """

    __slots__ = (
        "_current",
        "_finish",
        "_next_index",
        "_parser",
        "_pending",
        "_started",
        "_stopped",
        "_tools",
        "_usage",
    )

    def __init__(self) -> None:
        self._parser = sse.SseParser()
        self._started = False
        self._stopped = False
        self._current: tuple[str, int] | None = None  # ("text" | "reasoning" | "tool", canonical index)
        self._tools: dict[int, tuple[int, str]] = {}  # OpenAI tool index → (canonical index, call id)
        self._next_index = 0
        self._finish: FinishReason | None = None
        self._usage = Usage()
        self._pending: GatewayError | None = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        if self._pending is not None:
            raise self._pending
        out: list[StreamEvent] = []
        try:
            for event in self._parser.feed(chunk):
                self._data(event.data, out)
        except GatewayError as exc:
            if not out:
                raise
            # Deliver what arrived before the error in the same read; raise on the next call.
            self._pending = exc
        return out

    def finish(self) -> list[StreamEvent]:
        if self._pending is not None:
            raise self._pending
        out: list[StreamEvent] = []
        for event in self._parser.flush():
            self._data(event.data, out)
        if not self._started:
            raise UpstreamError("the upstream stream ended before its first chunk")
        # Without [DONE] the body ended early, whatever the chunks said (the usage chunk and
        # [DONE] follow the finish reason): no MessageStop, so the stream reads as truncated.
        self._close(out)
        return out

    def _data(self, data: str, out: list[StreamEvent]) -> None:
        if self._stopped or not data:
            return
        if data == "[DONE]":
            if not self._started:
                raise UpstreamError("the upstream stream ended before its first chunk")
            self._stop(out, self._finish or "end_turn")
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"malformed stream chunk from upstream: {data[:200]}") from None
        if not isinstance(payload, dict):
            raise UpstreamError("malformed stream chunk from upstream: not a JSON object")
        if "error" in payload:
            raise _stream_error(payload, data)
        if not self._started:
            self._started = True
            created = payload.get("created")
            out.append(
                MessageStart(
                    id=str(payload.get("id") or ""),
                    model=str(payload.get("model") or ""),
                    created=created if isinstance(created, int) else 0,
                )
            )
        if isinstance(payload.get("usage"), dict):
            self._usage = usage_from_openai(payload["usage"])
        choices = payload.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict) and choice.get("index", 0) == 0:
                    self._choice(choice, out)

    def _choice(self, choice: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                out.append(ReasoningDelta(self._open("reasoning", out), reasoning))
            for key in ("content", "refusal"):
                text = delta.get(key)
                if isinstance(text, str) and text:
                    out.append(TextDelta(self._open("text", out), text))
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for call in calls:
                    if isinstance(call, dict):
                        self._tool_call(call, out)
        finish = choice.get("finish_reason")
        if isinstance(finish, str):
            self._finish = FINISH_FROM_OPENAI.get(finish, "end_turn")
            self._close(out)

    def _open(self, kind: str, out: list[StreamEvent]) -> int:
        if self._current is not None and self._current[0] == kind:
            return self._current[1]
        self._close(out)
        index = self._next_index
        self._next_index += 1
        self._current = (kind, index)
        out.append(PartStart(index, TextPart("") if kind == "text" else ReasoningPart()))
        return index

    def _tool_call(self, call: dict[str, Any], out: list[StreamEvent]) -> None:
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        call_id = call.get("id")
        position = call.get("index")
        if not isinstance(position, int):
            # Some compatible servers omit the index: a new id means a new call.
            position = len(self._tools) - 1 if self._tools and not call_id else len(self._tools)
        known = self._tools.get(position)
        if known is None or (isinstance(call_id, str) and call_id and call_id != known[1]):
            self._close(out)
            index = self._next_index
            self._next_index += 1
            ident = call_id if isinstance(call_id, str) else ""
            name = function.get("name")
            self._tools[position] = (index, ident)
            self._current = ("tool", index)
            out.append(PartStart(index, ToolCallPart(ident, name if isinstance(name, str) else "", "")))
            known = (index, ident)
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(ToolArgumentsDelta(known[0], arguments))

    def _close(self, out: list[StreamEvent]) -> None:
        if self._current is not None:
            out.append(PartStop(self._current[1]))
            self._current = None

    def _stop(self, out: list[StreamEvent], finish: FinishReason) -> None:
        self._close(out)
        self._stopped = True
        out.append(MessageStop(finish, self._usage))


def _stream_error(payload: dict[str, Any], data: str) -> GatewayError:
    error = payload.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    status = 500
    if isinstance(code, int) and not isinstance(code, bool):
        status = code
    elif isinstance(code, str) and code.isdigit():
        status = int(code)
    if not 400 <= status < 600:
        status = 500
    return error_from_payload(status, payload, data.encode(), {})
