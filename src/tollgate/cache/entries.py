"""What a cache entry holds, as bytes: a canonical chat answer, or one embedding vector.

A chat entry is the whole ``ChatResponse`` (text, tool calls and reasoning parts, finish reason,
usage) with the time it was stored, so ``s-maxage`` can judge its age. A streamed answer is
stored in the same form once assembled (``cache.streams``), which lets a streamed request be
answered from a non-streamed one and the other way round. An embedding entry is one vector with
its share of the batch's input tokens. JSON through orjson, whose floats round-trip exactly.
Entries of another version, or that do not parse, read as misses. Pure; imports ``canonical``.
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from tollgate.canonical import (
    ChatResponse,
    FinishReason,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    Usage,
)

ENTRY_VERSION = 1
_FINISH = frozenset({"end_turn", "stop_sequence", "max_tokens", "tool_use", "content_filter"})


def _usage(usage: Usage) -> list[int]:
    return [
        usage.input_tokens,
        usage.output_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.reasoning_tokens,
    ]


def _part(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"k": "text", "text": part.text}
    if isinstance(part, ToolCallPart):
        return {"k": "tool_call", "id": part.id, "name": part.name, "arguments": part.arguments}
    if isinstance(part, ReasoningPart):
        return {"k": "reasoning", "text": part.text, "signature": part.signature, "redacted": part.redacted}
    return None  # images or documents in an answer: not kept


def encode_chat(response: ChatResponse, stored_at: float) -> bytes | None:
    """The entry for ``response``; ``None`` if it holds something the cache does not keep."""
    parts = [_part(p) for p in response.parts]
    if response.finish_reason not in _FINISH or any(p is None for p in parts):
        return None
    return orjson.dumps(
        {
            "v": ENTRY_VERSION,
            "t": stored_at,
            "id": response.id,
            "model": response.model,
            "created": response.created,
            "parts": parts,
            "finish": response.finish_reason,
            "stop": response.stop_sequence,
            "usage": _usage(response.usage),
        }
    )


def _read_part(raw: dict[str, Any]) -> Part:
    kind = raw["k"]
    if kind == "text":
        return TextPart(str(raw["text"]))
    if kind == "tool_call":
        return ToolCallPart(str(raw["id"]), str(raw["name"]), str(raw["arguments"]))
    if kind == "reasoning":
        return ReasoningPart(str(raw["text"]), raw.get("signature"), raw.get("redacted"))
    raise ValueError(f"unknown part kind {kind!r}")


def decode_chat(data: bytes) -> tuple[ChatResponse, float] | None:
    """The stored answer and when it was stored, or ``None`` for an unreadable entry."""
    try:
        raw = orjson.loads(data)
        if raw.get("v") != ENTRY_VERSION or raw["finish"] not in _FINISH:
            return None
        response = ChatResponse(
            id=str(raw["id"]),
            model=str(raw["model"]),
            parts=tuple(_read_part(p) for p in raw["parts"]),
            finish_reason=cast(FinishReason, raw["finish"]),
            usage=Usage(*(int(n) for n in raw["usage"])),
            created=int(raw["created"]),
            stop_sequence=raw.get("stop"),
        )
        return response, float(raw["t"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def encode_vector(vector: tuple[float, ...], tokens: int, stored_at: float) -> bytes:
    return orjson.dumps({"v": ENTRY_VERSION, "t": stored_at, "tokens": tokens, "vector": vector})


def decode_vector(data: bytes) -> tuple[tuple[float, ...], int, float] | None:
    """The vector, its input tokens and when it was stored; ``None`` if unreadable."""
    try:
        raw = orjson.loads(data)
        if raw.get("v") != ENTRY_VERSION:
            return None
        return tuple(float(x) for x in raw["vector"]), int(raw["tokens"]), float(raw["t"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def token_shares(items: tuple[str, ...] | tuple[tuple[int, ...], ...], total: int) -> list[int]:
    """Split a batch's input tokens over its items by size (the upstream reports one total)."""
    sizes = [len(item) or 1 for item in items]
    whole = sum(sizes)
    shares = [total * size // whole for size in sizes]
    if shares:
        shares[-1] += total - sum(shares)
    return shares
