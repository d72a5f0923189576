"""Anthropic Messages content blocks, parsed into canonical parts and rendered from them: the
blocks of request messages and tool results, and the blocks of an answer's ``content``.

Also the field checks that request parsing in ``anthropic_messages`` shares, so that every bad
field is reported the same way. Imports ``canonical`` and ``errors`` only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from tollgate.canonical import (
    DocumentPart,
    ImagePart,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from tollgate.dialects.tool_json import tool_input
from tollgate.errors import InvalidRequest

EPHEMERAL = {"type": "ephemeral"}  # the one cache_control Anthropic defines

# ---- field checks ------------------------------------------------------------------------------


def fail(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def expect_str(value: object, param: str) -> str:
    if not isinstance(value, str):
        raise fail(f"{param}: expected a string", param)
    return value


def expect_int(value: object, param: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise fail(f"{param}: expected an integer", param)
    return value


def expect_number(value: object, param: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise fail(f"{param}: expected a number", param)
    return float(value)


def expect_dict(value: object, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(f"{param}: expected an object", param)
    return value


def expect_list(value: object, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise fail(f"{param}: expected an array", param)
    return value


def cached(block: dict[str, Any]) -> bool:
    return isinstance(block.get("cache_control"), dict)


# ---- request blocks → canonical parts ----------------------------------------------------------


def parse_text(block: dict[str, Any], param: str) -> TextPart:
    return TextPart(expect_str(block.get("text"), f"{param}.text"), cache_control=cached(block))


def _parse_image(block: dict[str, Any], param: str) -> ImagePart:
    source = expect_dict(block.get("source"), f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type = expect_str(source.get("media_type"), f"{param}.source.media_type")
        return ImagePart(media_type=media_type, data=expect_str(source.get("data"), f"{param}.source.data"))
    if kind == "url":
        return ImagePart(url=expect_str(source.get("url"), f"{param}.source.url"))
    raise fail(f"{param}.source.type: unsupported image source {kind!r}", f"{param}.source.type")


def _parse_document(block: dict[str, Any], param: str) -> DocumentPart:
    source = expect_dict(block.get("source"), f"{param}.source")
    title = block.get("title")
    title = title if isinstance(title, str) else None
    kind = source.get("type")
    data = expect_str(source.get("data"), f"{param}.source.data") if kind in ("base64", "text") else ""
    if kind == "base64":
        media_type = expect_str(source.get("media_type"), f"{param}.source.media_type")
        return DocumentPart(media_type, data, title)
    if kind == "text":
        # Canonical documents are base64; text/* media types are turned back into text sources.
        encoded = base64.b64encode(data.encode()).decode()
        return DocumentPart(str(source.get("media_type") or "text/plain"), encoded, title)
    raise fail(f"{param}.source.type: unsupported document source {kind!r}", f"{param}.source.type")


def _parse_tool_use(block: dict[str, Any], param: str) -> ToolCallPart:
    arguments = expect_dict(block.get("input"), f"{param}.input")
    return ToolCallPart(
        id=expect_str(block.get("id"), f"{param}.id"),
        name=expect_str(block.get("name"), f"{param}.name"),
        arguments=orjson.dumps(arguments).decode(),
    )


def _parse_tool_result(block: dict[str, Any], param: str) -> ToolResultPart:
    tool_use_id = expect_str(block.get("tool_use_id"), f"{param}.tool_use_id")
    raw = block.get("content")
    content: tuple[TextPart | ImagePart | DocumentPart, ...] = ()
    if isinstance(raw, str):
        content = (TextPart(raw),)
    elif raw is not None:
        items: list[TextPart | ImagePart | DocumentPart] = []
        for j, item in enumerate(expect_list(raw, f"{param}.content")):
            item_param = f"{param}.content[{j}]"
            part = parse_block(expect_dict(item, item_param), item_param)
            if not isinstance(part, TextPart | ImagePart | DocumentPart):
                raise fail(f"{item_param}.type: tool results hold text, images or documents", item_param)
            items.append(part)
        content = tuple(items)
    if cached(block) and content and isinstance(content[-1], TextPart):
        # Canonical parts carry cache breakpoints on text only. Claude Code marks the last
        # tool result; a breakpoint on its last text caches the same prefix.
        content = (*content[:-1], TextPart(content[-1].text, cache_control=True))
    is_error = block.get("is_error")
    return ToolResultPart(tool_use_id, content, is_error=is_error is True)


def _parse_thinking(block: dict[str, Any], param: str) -> ReasoningPart:
    signature = block.get("signature")
    return ReasoningPart(
        text=expect_str(block.get("thinking"), f"{param}.thinking"),
        signature=signature if isinstance(signature, str) else None,
    )


def _parse_redacted_thinking(block: dict[str, Any], param: str) -> ReasoningPart:
    return ReasoningPart(redacted=expect_str(block.get("data"), f"{param}.data"))


_BLOCK_PARSERS: Mapping[str, Callable[[dict[str, Any], str], Part]] = {
    "text": parse_text,
    "image": _parse_image,
    "document": _parse_document,
    "tool_use": _parse_tool_use,
    "tool_result": _parse_tool_result,
    "thinking": _parse_thinking,
    "redacted_thinking": _parse_redacted_thinking,
}


def parse_block(block: dict[str, Any], param: str) -> Part:
    kind = block.get("type")
    parser = _BLOCK_PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise fail(f"{param}.type: unsupported content block type {block.get('type')!r}", f"{param}.type")
    return parser(block, param)


# ---- canonical parts → request blocks ----------------------------------------------------------


def text_block(part: TextPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache_control:
        block["cache_control"] = dict(EPHEMERAL)
    return block


def _image_block(part: ImagePart) -> dict[str, Any]:
    if part.data is not None:
        source = {"type": "base64", "media_type": part.media_type, "data": part.data}
    else:
        source = {"type": "url", "url": part.url or ""}
    return {"type": "image", "source": source}


def _document_block(part: DocumentPart) -> dict[str, Any]:
    source: dict[str, Any]
    if part.media_type.startswith("text/"):
        try:
            text = base64.b64decode(part.data, validate=True).decode()
            source = {"type": "text", "media_type": "text/plain", "data": text}
        except (binascii.Error, UnicodeDecodeError):
            source = {"type": "base64", "media_type": part.media_type, "data": part.data}
    else:
        source = {"type": "base64", "media_type": part.media_type, "data": part.data}
    block: dict[str, Any] = {"type": "document", "source": source}
    if part.name is not None:
        block["title"] = part.name
    return block


def _tool_result_block(part: ToolResultPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_call_id}
    content = [item for part_item in part.content if (item := input_block(part_item)) is not None]
    if content:
        block["content"] = content
    if part.is_error:
        block["is_error"] = True
    return block


def input_block(part: Part) -> dict[str, Any] | None:
    match part:
        case TextPart():
            # Anthropic rejects empty text blocks; OpenAI clients send "" beside tool calls.
            return text_block(part) if part.text else None
        case ImagePart():
            return _image_block(part)
        case DocumentPart():
            return _document_block(part)
        case ToolCallPart():
            return {"type": "tool_use", "id": part.id, "name": part.name, "input": tool_input(part.arguments)}
        case ToolResultPart():
            return _tool_result_block(part)
        case ReasoningPart():
            if part.redacted is not None:
                return {"type": "redacted_thinking", "data": part.redacted}
            if part.signature is None:
                return None  # unsigned reasoning (from other vendors) is refused by Anthropic
            return {"type": "thinking", "thinking": part.text, "signature": part.signature}
    return None


# ---- answer blocks -----------------------------------------------------------------------------


def output_block(part: Part) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ToolCallPart):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": tool_input(part.arguments)}
    if isinstance(part, ReasoningPart):
        if part.redacted is not None:
            return {"type": "redacted_thinking", "data": part.redacted}
        return {"type": "thinking", "thinking": part.text, "signature": part.signature or ""}
    return None  # images, documents and tool results are never model output


def parse_output_block(block: object) -> Part | None:
    if not isinstance(block, dict):
        return None
    match block.get("type"):
        case "text":
            return TextPart(str(block.get("text", "")))
        case "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            return ToolCallPart(str(block.get("id", "")), str(block.get("name", "")), arguments)
        case "thinking":
            signature = block.get("signature")
            return ReasoningPart(
                str(block.get("thinking", "")), signature if isinstance(signature, str) else None
            )
        case "redacted_thinking":
            return ReasoningPart(redacted=str(block.get("data", "")))
    return None  # server tool calls and their results have no canonical form
