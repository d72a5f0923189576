"""The texts a guardrail checks, taken out of canonical values and put back (masked) in place.

Pure. A request's prompt is its system text and every user message's text, tool results included,
history too: what the caller wrote, not what the model answered. An answer's text is its text
parts; a stream's is each text part's deltas joined. ``with_*`` puts texts back in the same order
(a stream's masked text travels as one delta per part, in place of its first delta).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tollgate.canonical import (
    ChatRequest,
    ChatResponse,
    Message,
    Part,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolResultPart,
)


def request_texts(request: ChatRequest) -> list[str]:
    texts = [part.text for part in request.system]
    for message in request.messages:
        if message.role != "user":
            continue
        for part in message.parts:
            if isinstance(part, TextPart):
                texts.append(part.text)
            elif isinstance(part, ToolResultPart):
                texts.extend(c.text for c in part.content if isinstance(c, TextPart))
    return texts


def with_request_texts(request: ChatRequest, texts: Sequence[str]) -> ChatRequest:
    it = iter(texts)
    system = tuple(replace(part, text=next(it)) for part in request.system)
    messages: list[Message] = []
    for message in request.messages:
        if message.role != "user":
            messages.append(message)
            continue
        parts: list[Part] = []
        for part in message.parts:
            if isinstance(part, TextPart):
                parts.append(replace(part, text=next(it)))
            elif isinstance(part, ToolResultPart):
                content = part.content
                content = tuple(replace(c, text=next(it)) if isinstance(c, TextPart) else c for c in content)
                parts.append(replace(part, content=content))
            else:
                parts.append(part)
        messages.append(replace(message, parts=tuple(parts)))
    return replace(request, system=system, messages=tuple(messages))


def response_texts(response: ChatResponse) -> list[str]:
    return [part.text for part in response.parts if isinstance(part, TextPart)]


def with_response_texts(response: ChatResponse, texts: Sequence[str]) -> ChatResponse:
    it = iter(texts)
    parts = tuple(replace(p, text=next(it)) if isinstance(p, TextPart) else p for p in response.parts)
    return replace(response, parts=parts)


def stream_texts(events: Sequence[StreamEvent]) -> list[str]:
    """Each text part's deltas joined, parts in order of their first delta."""
    joined: dict[int, list[str]] = {}
    for event in events:
        if isinstance(event, TextDelta):
            joined.setdefault(event.index, []).append(event.text)
    return ["".join(chunks) for chunks in joined.values()]


def with_stream_texts(events: Sequence[StreamEvent], texts: Sequence[str]) -> list[StreamEvent]:
    order = list(dict.fromkeys(e.index for e in events if isinstance(e, TextDelta)))
    replacement = dict(zip(order, texts, strict=True))
    out: list[StreamEvent] = []
    for event in events:
        if isinstance(event, TextDelta):
            text = replacement.pop(event.index, None)
            if text is None:
                continue  # the part's text went out whole, with its first delta
            event = replace(event, text=text)
        out.append(event)
    return out
