"""A deterministic in-process upstream for demos, the embedded default config and tests.

The same "model" also backs ``tollgate fake-upstream`` (``fakes/server.py``), which serves it over
HTTP in each wire format. Answers depend only on the request, so spend and usage in tests are
exact: the reply echoes the last user text, usage counts characters/4 (at least 1) for input and
words for output, tool calls fill the schema's required properties with sample values, and
``max_tokens`` truncates the reply (finish reason ``max_tokens``).
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

import orjson

from tollgate.canonical import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishReason,
    MessageStart,
    MessageStop,
    Part,
    PartStart,
    PartStop,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolArgumentsDelta,
    ToolCallPart,
    ToolResultPart,
    Usage,
)
from tollgate.config import Deployment
from tollgate.errors import upstream_error_for_status
from tollgate.providers import SendOptions

EMBEDDING_DIMENSIONS = 8


def _last_user_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role != "user":
            continue
        texts = [p.text for p in message.parts if isinstance(p, TextPart)]
        if texts:
            return " ".join(texts)
        if any(isinstance(p, ToolResultPart) for p in message.parts):
            return "tool results received"
    return ""


def input_tokens(request: ChatRequest) -> int:
    chars = sum(len(p.text) for p in request.system)
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, TextPart):
                chars += len(part.text)
            elif isinstance(part, ToolCallPart):
                chars += len(part.arguments) + len(part.name)
            elif isinstance(part, ToolResultPart):
                chars += sum(len(c.text) for c in part.content if isinstance(c, TextPart))
    return max(1, chars // 4)


def transcript(request: ChatRequest) -> str:
    """The whole conversation as the upstream received it, one ``role: text`` line each (the
    system prompt first): what ``transcript`` models answer, so tests can see what was sent."""
    lines = [f"system: {' '.join(p.text for p in request.system)}"] if request.system else []
    for message in request.messages:
        texts = " ".join(p.text for p in message.parts if isinstance(p, TextPart))
        lines.append(f"{message.role}: {texts}")
    return "\n".join(lines)


def _sample(schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "integer" or kind == "number":
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: _sample(props[name]) for name in schema.get("required") or [] if name in props}
    return "example"


def reply(request: ChatRequest, text_override: str | None = None) -> ChatResponse:
    """The fake model's whole answer to a request."""
    wants_tool = (
        request.tools
        and request.tool_choice.mode != "none"
        and not any(isinstance(p, ToolResultPart) for p in request.messages[-1].parts)
    )
    parts: tuple[Part, ...]
    finish: FinishReason
    if wants_tool:
        tool = request.tools[0]
        if request.tool_choice.mode == "tool":
            tool = next((t for t in request.tools if t.name == request.tool_choice.name), tool)
        arguments = orjson.dumps(_sample({"type": "object", **tool.parameters})).decode()
        call_id = "call_" + hashlib.sha256(f"{tool.name}{len(request.messages)}".encode()).hexdigest()[:24]
        parts = (ToolCallPart(call_id, tool.name, arguments),)
        finish = "tool_use"
        output = max(1, len(arguments) // 4)
    else:
        text = (
            text_override
            if text_override is not None
            else (f"Hello from tollgate's fake upstream! You said: {_last_user_text(request)}")
        )
        words = text.split(" ")
        finish = "end_turn"
        if request.max_tokens is not None and len(words) > request.max_tokens:
            words = words[: request.max_tokens]
            finish = "max_tokens"
        parts = (TextPart(" ".join(words)),)
        output = len(words)
    digest = hashlib.sha256(repr(request.messages).encode()).hexdigest()[:24]
    return ChatResponse(
        id=f"fake-{digest}",
        model=request.model,
        parts=parts,
        finish_reason=finish,
        usage=Usage(input_tokens=input_tokens(request), output_tokens=output),
        created=1_700_000_000,
    )


def stream_events(response: ChatResponse) -> list[StreamEvent]:
    """The answer as stream events: text word by word, tool arguments in two pieces."""
    events: list[StreamEvent] = [
        MessageStart(response.id, response.model, Usage(input_tokens=response.usage.input_tokens))
    ]
    for index, part in enumerate(response.parts):
        if isinstance(part, TextPart):
            events.append(PartStart(index, TextPart("")))
            words = part.text.split(" ")
            events.extend(TextDelta(index, w if i == 0 else " " + w) for i, w in enumerate(words))
        elif isinstance(part, ToolCallPart):
            events.append(PartStart(index, ToolCallPart(part.id, part.name, "")))
            half = len(part.arguments) // 2
            events.append(ToolArgumentsDelta(index, part.arguments[:half]))
            events.append(ToolArgumentsDelta(index, part.arguments[half:]))
        events.append(PartStop(index))
    events.append(
        MessageStop(response.finish_reason, response.usage, native=response.native,
                    native_dialect=response.native_dialect)
    )  # fmt: skip
    return events


def embed(request: EmbeddingRequest, dimensions: int | None = None) -> EmbeddingResponse:
    size = request.dimensions or dimensions or EMBEDDING_DIMENSIONS
    vectors = []
    tokens = 0
    for item in request.inputs:
        text = item if isinstance(item, str) else " ".join(map(str, item))
        tokens += max(1, len(text) // 4)
        seed = hashlib.sha256(text.encode()).digest() * (size // 8 + 1)
        values = struct.unpack(f"<{size}B", seed[:size])
        vectors.append(tuple(round(v / 255.0 - 0.5, 6) for v in values))
    return EmbeddingResponse(model=request.model, vectors=tuple(vectors), usage=Usage(input_tokens=tokens))


def _billed(response: ChatResponse, deployment: Deployment) -> ChatResponse:
    """``mock_output_tokens``: report that many output tokens, whatever the reply (an upstream that
    ignores ``max_tokens`` and bills more than a reservation expected)."""
    billed = deployment.params.get("mock_output_tokens")
    if billed is None:
        return response
    return replace(response, usage=replace(response.usage, output_tokens=int(billed)))


class FakeProvider:
    """``fake/<anything>`` deployments. ``litellm_params.mock_response`` fixes the reply text;
    ``mock_error_status`` makes every call fail with that upstream status (for demos of errors);
    ``mock_latency`` (seconds) delays the answer; ``mock_output_tokens`` overrides the billed output."""

    name = "fake"

    def __init__(self, http: object = None, env: Mapping[str, str] | None = None) -> None:
        """``http`` is accepted, and unused, so every provider is built the same way."""

    async def _delay(self, deployment: Deployment) -> None:
        latency = deployment.params.get("mock_latency")
        if latency:
            await asyncio.sleep(float(latency))
        status = deployment.params.get("mock_error_status")
        if status:
            raise upstream_error_for_status(int(status), f"fake upstream error {status}", provider="fake")

    async def chat(self, deployment: Deployment, request: ChatRequest, options: SendOptions) -> ChatResponse:
        await self._delay(deployment)
        return _billed(reply(request, deployment.params.get("mock_response")), deployment)

    async def chat_stream(
        self, deployment: Deployment, request: ChatRequest, options: SendOptions
    ) -> AsyncIterator[StreamEvent]:
        await self._delay(deployment)
        answer = _billed(reply(request, deployment.params.get("mock_response")), deployment)
        return _iterate(stream_events(answer))

    async def embed(
        self, deployment: Deployment, request: EmbeddingRequest, options: SendOptions
    ) -> EmbeddingResponse:
        await self._delay(deployment)
        return embed(request)

    async def aclose(self) -> None:
        return None


async def _iterate(events: list[StreamEvent]) -> AsyncIterator[StreamEvent]:
    for event in events:
        yield event
