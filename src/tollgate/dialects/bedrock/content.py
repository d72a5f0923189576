"""Bedrock Converse content blocks, parsed into canonical parts and rendered from them: message,
system and tool-result blocks, with the ``cachePoint`` markers between them.

Binary fields (image and document bytes, redacted reasoning) travel as base64 text in JSON, which
is also how canonical parts carry them. Also the typed field readers that request parsing in
``request`` shares. Imports ``canonical`` and ``errors`` only.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
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

IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})
DOCUMENT_MEDIA_TYPES: Mapping[str, str] = {
    "pdf": "application/pdf",
    "csv": "text/csv",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html",
    "txt": "text/plain",
    "md": "text/markdown",
}
DOCUMENT_FORMATS: Mapping[str, str] = {media: fmt for fmt, media in DOCUMENT_MEDIA_TYPES.items()}
_DOCUMENT_NAME_BAD = re.compile(r"[^A-Za-z0-9\-()\[\] ]+")
CACHE_POINT: Mapping[str, Any] = {"cachePoint": {"type": "default"}}


# ---- small typed readers -----------------------------------------------------------------------


def expect_object(value: object, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{param}' must be an object", param=param)
    return value


def expect_list(value: object, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest(f"'{param}' must be an array", param=param)
    return value


def expect_str(value: object, param: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"'{param}' must be a string", param=param)
    return value


# ---- Converse blocks → canonical parts ---------------------------------------------------------


def parse_content(value: object, param: str, *, strict: bool) -> tuple[Part, ...]:
    parts: list[Part] = []
    for j, block in enumerate(expect_list(value, param)):
        block_param = f"{param}[{j}]"
        block = expect_object(block, block_param)
        if "cachePoint" in block:
            mark_cache(parts)
            continue
        key = next(iter(block), "")
        parser = _BLOCK_PARSERS.get(key)
        if parser is None:
            if strict:
                raise InvalidRequest(f"unsupported content block {key!r} in {block_param}", param=block_param)
            continue  # responses may carry blocks the gateway cannot represent (citations, …)
        parts.append(parser(block[key], f"{block_param}.{key}"))
    return tuple(parts)


def mark_cache(parts: list[Part]) -> None:
    """A cachePoint block marks the end of the preceding part; canonical keeps that on text only."""
    if not parts:
        return
    last = parts[-1]
    if isinstance(last, TextPart):
        parts[-1] = replace(last, cache_control=True)
    elif isinstance(last, ToolResultPart) and last.content and isinstance(last.content[-1], TextPart):
        marked = replace(last.content[-1], cache_control=True)
        parts[-1] = replace(last, content=(*last.content[:-1], marked))


def parse_text(value: object, param: str) -> TextPart:
    return TextPart(expect_str(value, param))


def _parse_image(value: object, param: str) -> ImagePart:
    data = expect_object(value, param)
    fmt = data.get("format")
    if fmt not in IMAGE_FORMATS:
        raise InvalidRequest(f"'{param}.format' must be one of png, jpeg, gif, webp", param=f"{param}.format")
    return ImagePart(media_type=f"image/{fmt}", data=_source_bytes(data.get("source"), f"{param}.source"))


def _parse_document(value: object, param: str) -> DocumentPart:
    data = expect_object(value, param)
    fmt = data.get("format", "txt")
    media_type = DOCUMENT_MEDIA_TYPES.get(fmt) if isinstance(fmt, str) else None
    if media_type is None:
        raise InvalidRequest(f"unsupported document format {fmt!r}", param=f"{param}.format")
    doc_name = data.get("name")
    source = expect_object(data.get("source"), f"{param}.source")
    if isinstance(source.get("text"), str):
        encoded = base64.b64encode(source["text"].encode("utf-8")).decode("ascii")
    else:
        encoded = _source_bytes(source, f"{param}.source")
    return DocumentPart(media_type, encoded, doc_name if isinstance(doc_name, str) else None)


def _source_bytes(value: object, param: str) -> str:
    source = expect_object(value, param)
    if "bytes" not in source:
        raise InvalidRequest(f"'{param}' must carry 'bytes' (S3 locations are not supported)", param=param)
    return expect_str(source["bytes"], f"{param}.bytes")


def _parse_tool_use(value: object, param: str) -> ToolCallPart:
    data = expect_object(value, param)
    return ToolCallPart(
        id=expect_str(data.get("toolUseId"), f"{param}.toolUseId"),
        name=expect_str(data.get("name"), f"{param}.name"),
        arguments=orjson.dumps(data.get("input", {})).decode(),
    )


def _parse_tool_result(value: object, param: str) -> ToolResultPart:
    data = expect_object(value, param)
    content: list[TextPart | ImagePart | DocumentPart] = []
    for j, block in enumerate(expect_list(data.get("content", []), f"{param}.content")):
        block_param = f"{param}.content[{j}]"
        block = expect_object(block, block_param)
        if "text" in block:
            content.append(parse_text(block["text"], f"{block_param}.text"))
        elif "json" in block:
            content.append(TextPart(orjson.dumps(block["json"]).decode()))
        elif "image" in block:
            content.append(_parse_image(block["image"], f"{block_param}.image"))
        elif "document" in block:
            content.append(_parse_document(block["document"], f"{block_param}.document"))
        elif "cachePoint" not in block:
            raise InvalidRequest(f"unsupported tool result block in '{block_param}'", param=block_param)
    return ToolResultPart(
        tool_call_id=expect_str(data.get("toolUseId"), f"{param}.toolUseId"),
        content=tuple(content),
        is_error=data.get("status") == "error",
    )


def _parse_reasoning(value: object, param: str) -> ReasoningPart:
    data = expect_object(value, param)
    if "redactedContent" in data:
        return ReasoningPart(redacted=expect_str(data["redactedContent"], f"{param}.redactedContent"))
    text = expect_object(data.get("reasoningText"), f"{param}.reasoningText")
    signature = text.get("signature")
    return ReasoningPart(
        text=expect_str(text.get("text", ""), f"{param}.reasoningText.text"),
        signature=signature if isinstance(signature, str) else None,
    )


_BLOCK_PARSERS: Mapping[str, Callable[[object, str], Part]] = {
    "text": parse_text,
    "image": _parse_image,
    "document": _parse_document,
    "toolUse": _parse_tool_use,
    "toolResult": _parse_tool_result,
    "reasoningContent": _parse_reasoning,
}


# ---- canonical parts → Converse blocks ---------------------------------------------------------


def output_block(part: Part) -> dict[str, Any]:
    if isinstance(part, ToolCallPart):
        return {"toolUse": {"toolUseId": part.id, "name": part.name, "input": tool_input(part.arguments)}}
    if isinstance(part, ReasoningPart):
        return _render_reasoning(part)
    if isinstance(part, TextPart):
        return {"text": part.text}
    rendered = _render_part(part, drop_params=True)
    return rendered[0] if rendered else {"text": ""}


def render_parts(parts: tuple[Part, ...], drop_params: bool, param: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        out.extend(_render_part(part, drop_params=drop_params, param=f"{param}[{j}]"))
    return out


def _render_part(part: Part, *, drop_params: bool, param: str = "content") -> list[dict[str, Any]]:
    if isinstance(part, TextPart):
        # Bedrock rejects blank text blocks; an empty part carries nothing anyway.
        block = [{"text": part.text}] if part.text else []
        return [*block, dict(CACHE_POINT)] if part.cache_control else block
    if isinstance(part, ImagePart):
        image = _render_image(part, drop_params, param)
        return [image] if image is not None else []
    if isinstance(part, DocumentPart):
        document = _render_document(part, drop_params, param)
        return [document] if document is not None else []
    if isinstance(part, ToolCallPart):
        return [{"toolUse": {"toolUseId": part.id, "name": part.name, "input": tool_input(part.arguments)}}]
    if isinstance(part, ToolResultPart):
        content = render_parts(part.content, drop_params, f"{param}.content")
        status = "error" if part.is_error else "success"
        return [{"toolResult": {"toolUseId": part.tool_call_id, "content": content, "status": status}}]
    return [_render_reasoning(part)]


def _render_reasoning(part: ReasoningPart) -> dict[str, Any]:
    if part.redacted is not None:
        return {"reasoningContent": {"redactedContent": part.redacted}}
    text: dict[str, Any] = {"text": part.text}
    if part.signature is not None:
        text["signature"] = part.signature
    return {"reasoningContent": {"reasoningText": text}}


def _render_image(part: ImagePart, drop_params: bool, param: str) -> dict[str, Any] | None:
    media_type, data = part.media_type, part.data
    if data is None and part.url is not None and part.url.startswith("data:"):
        header, _, data = part.url[5:].partition(",")
        media_type = header.split(";", 1)[0] or media_type
    fmt = media_type.rpartition("/")[2].lower()
    fmt = "jpeg" if fmt == "jpg" else fmt
    if data is None or fmt not in IMAGE_FORMATS:
        if drop_params:
            return None
        reason = "images by URL" if data is None else f"image type {media_type!r}"
        raise InvalidRequest(f"Bedrock Converse does not support {reason}", param=param)
    return {"image": {"format": fmt, "source": {"bytes": data}}}


def _render_document(part: DocumentPart, drop_params: bool, param: str) -> dict[str, Any] | None:
    fmt = DOCUMENT_FORMATS.get(part.media_type)
    if fmt is None and part.media_type.startswith("text/"):
        fmt = "txt"
    if fmt is None:
        if drop_params:
            return None
        raise InvalidRequest(f"Bedrock does not support document type {part.media_type!r}", param=param)
    # Bedrock document names allow letters, digits, single spaces, hyphens, parentheses, brackets.
    doc_name = " ".join(_DOCUMENT_NAME_BAD.sub("-", part.name or "document").split()) or "document"
    return {"document": {"format": fmt, "name": doc_name, "source": {"bytes": part.data}}}
