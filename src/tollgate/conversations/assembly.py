"""A streamed answer put back together as one canonical message, for chat history. Pure.

Parts are gathered by their stream index: text and reasoning deltas are appended, tool-call
arguments concatenated; the message is complete only when the stream's ``MessageStop`` arrived.
"""

from __future__ import annotations

from dataclasses import replace

from tollgate.canonical import (
    Message,
    MessageStop,
    Part,
    PartStart,
    ReasoningDelta,
    ReasoningPart,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolArgumentsDelta,
    ToolCallPart,
)


class AnswerAssembly:
    __slots__ = ("_parts", "complete")

    def __init__(self) -> None:
        self._parts: dict[int, Part] = {}
        self.complete = False

    def add(self, event: StreamEvent) -> None:
        match event:
            case PartStart():
                self._parts[event.index] = event.part
            case TextDelta():
                part = self._parts.get(event.index)
                text = part.text if isinstance(part, TextPart) else ""
                self._parts[event.index] = TextPart(text + event.text)
            case ToolArgumentsDelta():
                part = self._parts.get(event.index)
                if isinstance(part, ToolCallPart):
                    self._parts[event.index] = replace(part, arguments=part.arguments + event.json)
            case ReasoningDelta():
                part = self._parts.get(event.index)
                current = part if isinstance(part, ReasoningPart) else ReasoningPart()
                self._parts[event.index] = ReasoningPart(
                    current.text + event.text,
                    event.signature or current.signature,
                    event.redacted or current.redacted,
                )
            case MessageStop():
                self.complete = True

    def message(self) -> Message:
        parts = []
        for index in sorted(self._parts):
            part = self._parts[index]
            if isinstance(part, ToolCallPart) and not part.arguments:
                part = replace(part, arguments="{}")
            parts.append(part)
        return Message("assistant", tuple(parts))
