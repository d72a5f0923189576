"""Canonical messages as the JSON stored for each turn, and back. Pure.

The stored form is the canonical one, not any client's wire format, so a conversation started
through one dialect continues through any other. Each part is an object tagged with its
``kind``; fields at their default value are left out. A part of a kind this version does not
know (written by a newer one) is refused rather than dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tollgate.canonical import (
    DocumentPart,
    ImagePart,
    Message,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from tollgate.errors import GatewayError

Json = dict[str, Any]


def message_json(message: Message) -> Json:
    out: Json = {"role": message.role, "parts": [part_json(p) for p in message.parts]}
    if message.name is not None:
        out["name"] = message.name
    return out


def part_json(part: Part) -> Json:
    match part:
        case TextPart():
            return _compact({"kind": "text", "text": part.text, "cache_control": part.cache_control or None})
        case ImagePart():
            return _compact(
                {"kind": "image", "media_type": part.media_type, "data": part.data, "url": part.url,
                 "detail": part.detail}
            )
        case DocumentPart():
            return _compact({"kind": "document", "media_type": part.media_type, "data": part.data,
                             "name": part.name})
        case ToolCallPart():
            return {"kind": "tool_call", "id": part.id, "name": part.name, "arguments": part.arguments}
        case ToolResultPart():
            return _compact(
                {"kind": "tool_result", "tool_call_id": part.tool_call_id,
                 "content": [part_json(c) for c in part.content], "is_error": part.is_error or None}
            )
        case ReasoningPart():
            return _compact({"kind": "reasoning", "text": part.text, "signature": part.signature,
                             "redacted": part.redacted})
    raise TypeError(f"unknown part {part!r}")


def system_json(system: Iterable[TextPart]) -> list[Json]:
    return [part_json(p) for p in system]


def message_of(data: Mapping[str, Any]) -> Message:
    role = data.get("role")
    if role != "user" and role != "assistant":
        raise _corrupt(f"role {role!r}")
    name = data.get("name")
    parts = tuple(part_of(p) for p in data.get("parts", ()))
    return Message(role, parts, name if isinstance(name, str) else None)


def system_of(data: object) -> tuple[TextPart, ...]:
    if not isinstance(data, list):
        return ()
    return tuple(p for p in (part_of(item) for item in data) if isinstance(p, TextPart))


def part_of(data: Mapping[str, Any]) -> Part:
    match data.get("kind"):
        case "text":
            return TextPart(data["text"], bool(data.get("cache_control", False)))
        case "image":
            return ImagePart(data.get("media_type", "image/png"), data.get("data"), data.get("url"),
                             data.get("detail"))
        case "document":
            return DocumentPart(data["media_type"], data["data"], data.get("name"))
        case "tool_call":
            return ToolCallPart(data["id"], data["name"], data.get("arguments", "{}"))
        case "tool_result":
            content = tuple(part_of(c) for c in data.get("content", ()))
            inner = tuple(c for c in content if isinstance(c, TextPart | ImagePart | DocumentPart))
            return ToolResultPart(data["tool_call_id"], inner, bool(data.get("is_error", False)))
        case "reasoning":
            return ReasoningPart(data.get("text", ""), data.get("signature"), data.get("redacted"))
    raise _corrupt(f"part kind {data.get('kind')!r}")


def _compact(values: Json) -> Json:
    return {k: v for k, v in values.items() if v is not None}


def _corrupt(what: str) -> GatewayError:
    return GatewayError(
        f"a stored chat-history turn has an unknown {what}; was it written by a newer tollgate?"
    )
