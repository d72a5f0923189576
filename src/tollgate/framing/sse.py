"""Server-sent events: an incremental parser (bytes → events) and an encoder (event → bytes).

Follows the WHATWG event-stream rules that matter for LLM APIs: ``\\n``, ``\\r\\n`` or ``\\r``
line ends, ``event:``/``data:`` fields with one optional space after the colon, multi-line data
joined by ``\\n``, comment lines (``:``) ignored, an event dispatched at a blank line.
Imports nothing from tollgate.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str | None
    data: str


class SseParser:
    """Feed arbitrary byte chunks; get back the complete events they finish."""

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SseEvent]:
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            # A lone trailing \r may be the first half of \r\n: keep it for the next chunk.
            keep_cr = buffer.endswith(b"\r")
            body = buffer[:-1] if keep_cr else buffer
            buffer = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n") + (b"\r" if keep_cr else b"")
        events: list[SseEvent] = []
        start = 0
        # Whole events (up to a blank line) only; an unfinished one waits in the buffer.
        while (end := buffer.find(b"\n\n", start)) >= 0:
            block = buffer[start:end]
            start = end + 2
            if block.startswith(b"data: ") and b"\n" not in block:
                # The usual event, one ``data:`` line: no line-by-line parsing.
                events.append(SseEvent(None, block[6:].decode("utf-8", errors="replace")))
                continue
            self._lines(block, events)
            self._dispatch(events)
        self._buffer = buffer[start:]
        return events

    def flush(self) -> list[SseEvent]:
        """Events left when the body ended without a final blank line."""
        events: list[SseEvent] = []
        self._lines(self._buffer.strip(b"\r\n"), events)
        self._buffer = b""
        self._dispatch(events)
        return events

    def _lines(self, block: bytes, events: list[SseEvent]) -> None:
        for line in block.split(b"\n"):
            if line:
                self._line(line.decode("utf-8", errors="replace"))
            else:
                self._dispatch(events)

    def _dispatch(self, events: list[SseEvent]) -> None:
        if self._data or self._event is not None:
            events.append(SseEvent(self._event, "\n".join(self._data)))
        self._event = None
        self._data = []

    def _line(self, line: str) -> None:
        if line.startswith(":"):
            return
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value


def encode(data: bytes, event: str | None = None) -> bytes:
    """One SSE event. ``data`` must not contain newlines (JSON from orjson never does)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
