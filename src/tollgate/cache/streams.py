"""Streams and the cache: a stream's events assembled into one answer (``Assembly``), and a
stored answer replayed as events (``replay``), which each client's stream encoder then renders
in that client's own format.

Only a stream that ended with its ``MessageStop`` (and not with an error) assembles into an
answer; a failed, truncated or abandoned stream assembles into nothing. Pure; imports
``canonical``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tollgate.canonical import (
    ChatResponse,
    MessageStart,
    MessageStop,
    Part,
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


@dataclass(slots=True)
class _Piece:
    kind: str  # text | tool_call | reasoning
    id: str = ""
    name: str = ""
    text: list[str] = field(default_factory=list)
    signature: list[str] = field(default_factory=list)
    redacted: str | None = None

    def part(self) -> Part:
        joined = "".join(self.text)
        if self.kind == "tool_call":
            return ToolCallPart(self.id, self.name, joined or "{}")
        if self.kind == "reasoning":
            return ReasoningPart(joined, "".join(self.signature) or None, self.redacted)
        return TextPart(joined)


class Assembly:
    """Feed it every event of a stream; ``response()`` is the whole answer once it ended well."""

    __slots__ = ("_created", "_id", "_model", "_pieces", "_start_usage", "_stop")

    def __init__(self) -> None:
        self._id = ""
        self._model = ""
        self._created = 0
        self._start_usage = Usage()
        self._pieces: dict[int, _Piece] = {}
        self._stop: MessageStop | None = None

    def _piece(self, index: int, kind: str) -> _Piece:
        piece = self._pieces.get(index)
        if piece is None:
            piece = self._pieces[index] = _Piece(kind)
        return piece

    def feed(self, event: StreamEvent) -> None:
        match event:
            case MessageStart():
                self._id, self._model, self._created = event.id, event.model, event.created
                self._start_usage = event.usage
            case PartStart(index=index, part=TextPart() as part):
                self._piece(index, "text").text.append(part.text)
            case PartStart(index=index, part=ToolCallPart() as part):
                piece = self._piece(index, "tool_call")
                piece.id, piece.name = part.id, part.name
                piece.text.append(part.arguments)
            case PartStart(index=index, part=ReasoningPart() as part):
                piece = self._piece(index, "reasoning")
                piece.text.append(part.text)
                piece.signature.append(part.signature or "")
                piece.redacted = part.redacted
            case TextDelta(index=index, text=text):
                self._piece(index, "text").text.append(text)
            case ToolArgumentsDelta(index=index, json=chunk):
                self._piece(index, "tool_call").text.append(chunk)
            case ReasoningDelta():
                piece = self._piece(event.index, "reasoning")
                piece.text.append(event.text)
                piece.signature.append(event.signature or "")
                if event.redacted is not None:
                    piece.redacted = (piece.redacted or "") + event.redacted
            case MessageStop():
                self._stop = event

    def response(self) -> ChatResponse | None:
        stop = self._stop
        if stop is None or stop.finish_reason == "error":
            return None
        # MessageStop carries the whole message's usage; an upstream that reports none there
        # reported it at the start.
        usage = stop.usage if stop.usage.total_tokens else self._start_usage
        return ChatResponse(
            id=self._id,
            model=self._model,
            parts=tuple(self._pieces[i].part() for i in sorted(self._pieces)),
            finish_reason=stop.finish_reason,
            usage=usage,
            created=self._created,
            stop_sequence=stop.stop_sequence,
        )


def replay_events(response: ChatResponse) -> list[StreamEvent]:
    """A stored answer as the events a stream of it would have had: each part whole, in one delta."""
    input_usage = Usage(
        response.usage.input_tokens, 0, response.usage.cache_read_tokens, response.usage.cache_write_tokens
    )
    events: list[StreamEvent] = [MessageStart(response.id, response.model, input_usage, response.created)]
    for index, part in enumerate(response.parts):
        if isinstance(part, TextPart):
            events += [PartStart(index, TextPart("")), TextDelta(index, part.text)]
        elif isinstance(part, ToolCallPart):
            events.append(PartStart(index, ToolCallPart(part.id, part.name, "")))
            events.append(ToolArgumentsDelta(index, part.arguments))
        elif isinstance(part, ReasoningPart):
            if part.redacted is not None:
                events.append(PartStart(index, ReasoningPart(redacted=part.redacted)))
            else:
                events.append(PartStart(index, ReasoningPart()))
                if part.text:
                    events.append(ReasoningDelta(index, part.text))
                if part.signature:
                    events.append(ReasoningDelta(index, signature=part.signature))
        events.append(PartStop(index))
    events.append(MessageStop(response.finish_reason, response.usage, response.stop_sequence))
    return events


async def replay(response: ChatResponse) -> AsyncIterator[StreamEvent]:
    for event in replay_events(response):
        yield event
