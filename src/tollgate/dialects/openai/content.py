"""OpenAI chat messages and their content parts, both ways: client (and upstream) messages →
canonical ``Message``/``Part`` values, canonical → the ``messages`` list an OpenAI-compatible
upstream takes; plus the typed field readers that request parsing shares, so every bad field is
reported the same way. Imports ``canonical`` and ``errors`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tollgate.canonical import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from tollgate.errors import InvalidRequest


def bad(param: str, expected: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for '{param}': expected {expected}.", param=param)


def opt_str(obj: Mapping[str, Any], key: str, param: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise bad(param, "a string")


def opt_int(obj: Mapping[str, Any], key: str, minimum: int | None = None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum):
        raise bad(key, "an integer" if minimum is None else f"an integer >= {minimum}")
    return value


def opt_float(obj: Mapping[str, Any], key: str, minimum: float | None = None) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    bad_type = not isinstance(value, int | float) or isinstance(value, bool)
    if bad_type or (minimum is not None and value < minimum):
        raise bad(key, "a number" if minimum is None else f"a number >= {minimum}")
    return float(value)


def opt_bool(obj: Mapping[str, Any], key: str, param: str) -> bool | None:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise bad(param, "a boolean")


def str_list(value: object, param: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise bad(param, "a string or a list of strings")


def _data_url(url: str, param: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a ``data:`` URL, or None for any other URL."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep or not header.endswith(";base64"):
        raise InvalidRequest(f"'{param}' must be a base64 data URL or an http(s) URL.", param=param)
    return header[: -len(";base64")] or "application/octet-stream", data


def _parse_text(part: Mapping[str, Any], param: str) -> TextPart:
    text = part.get("text")
    if not isinstance(text, str):
        raise bad(f"{param}.text", "a string")
    return TextPart(text)


def _parse_image(part: Mapping[str, Any], param: str) -> ImagePart:
    image = part.get("image_url")
    if isinstance(image, str):
        image = {"url": image}
    if not isinstance(image, dict) or not isinstance(image.get("url"), str):
        raise bad(f"{param}.image_url.url", "a string")
    detail = opt_str(image, "detail", f"{param}.image_url.detail")
    inline = _data_url(image["url"], f"{param}.image_url.url")
    if inline is not None:
        return ImagePart(media_type=inline[0], data=inline[1], detail=detail)
    if not image["url"].startswith(("http://", "https://")):
        raise InvalidRequest(f"'{param}.image_url.url' must be a data: or http(s) URL.", param=param)
    return ImagePart(url=image["url"], detail=detail)


def _parse_file(part: Mapping[str, Any], param: str) -> DocumentPart:
    file = part.get("file")
    if not isinstance(file, dict) or not isinstance(file.get("file_data"), str):
        raise InvalidRequest(f"'{param}.file.file_data' is required (file_id is not supported).", param=param)
    filename = opt_str(file, "filename", f"{param}.file.filename")
    inline = _data_url(file["file_data"], f"{param}.file.file_data")
    media_type, data = inline if inline is not None else ("application/pdf", file["file_data"])
    return DocumentPart(media_type=media_type, data=data, name=filename)


def parse_content(content: object, param: str, *, text_only: bool = False) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list):
        raise bad(param, "a string or a list of content parts")
    parts: list[Part] = []
    for i, item in enumerate(content):
        item_param = f"{param}[{i}]"
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text":
            parts.append(_parse_text(item, item_param))
        elif kind == "refusal" and isinstance(item.get("refusal"), str):
            parts.append(TextPart(item["refusal"]))
        elif kind == "image_url" and not text_only:
            parts.append(_parse_image(item, item_param))
        elif kind == "file" and not text_only:
            parts.append(_parse_file(item, item_param))
        else:
            message = f"Unsupported content part type {kind!r} in '{item_param}'."
            raise InvalidRequest(message, param=item_param)
    return tuple(parts)


def parse_tool_call(call: object, param: str) -> ToolCallPart:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(call, dict) or not isinstance(function, dict):
        raise bad(f"{param}.function", "an object")
    call_id = call.get("id")
    fn_name = function.get("name")
    if not isinstance(call_id, str) or not isinstance(fn_name, str):
        raise bad(f"{param}.id", "tool call id and function.name strings")
    arguments = function.get("arguments", "{}")
    if isinstance(arguments, dict):
        arguments = orjson.dumps(arguments).decode()
    elif not isinstance(arguments, str):
        raise bad(f"{param}.function.arguments", "a JSON string")
    return ToolCallPart(call_id, fn_name, arguments or "{}")


def parse_reasoning(msg: Mapping[str, Any], param: str) -> tuple[ReasoningPart, ...]:
    blocks = msg.get("thinking_blocks")  # LiteLLM carries Anthropic signatures here
    if isinstance(blocks, list) and blocks:
        parts = []
        for block in blocks:
            if isinstance(block, dict) and block.get("type") == "redacted_thinking":
                parts.append(ReasoningPart(redacted=str(block.get("data") or "")))
            elif isinstance(block, dict):
                sig = block.get("signature")
                thought = str(block.get("thinking") or "")
                parts.append(ReasoningPart(thought, sig if isinstance(sig, str) else None))
        return tuple(parts)
    text = opt_str(msg, "reasoning_content", f"{param}.reasoning_content")
    return (ReasoningPart(text),) if text else ()


def text_of(parts: tuple[Part, ...]) -> str:
    return "".join(p.text for p in parts if isinstance(p, TextPart))


def render_tool_call(part: ToolCallPart) -> dict[str, object]:
    return {"id": part.id, "type": "function", "function": {"name": part.name, "arguments": part.arguments}}


def thinking_block(part: ReasoningPart) -> dict[str, object]:
    if part.redacted:
        return {"type": "redacted_thinking", "data": part.redacted}
    return {"type": "thinking", "thinking": part.text, "signature": part.signature}


def _render_part(part: Part) -> dict[str, object]:
    match part:
        case TextPart():
            return {"type": "text", "text": part.text}
        case ImagePart():
            url = part.url if part.data is None else f"data:{part.media_type};base64,{part.data}"
            image: dict[str, object] = {"url": url}
            if part.detail:
                image["detail"] = part.detail
            return {"type": "image_url", "image_url": image}
        case DocumentPart():
            file: dict[str, object] = {"file_data": f"data:{part.media_type};base64,{part.data}"}
            if part.name:
                file["filename"] = part.name
            return {"type": "file", "file": file}
    raise InvalidRequest(f"A {part.kind} part cannot be sent in this message.", param="messages")


def render_content(parts: list[Part]) -> str | list[dict[str, object]]:
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return parts[0].text
    return [_render_part(p) for p in parts]


def _parse_assistant(msg: Mapping[str, Any], param: str) -> Message:
    parts: list[Part] = list(parse_reasoning(msg, param))
    content = msg.get("content")
    if content is not None and content != "":
        parts.extend(parse_content(content, f"{param}.content", text_only=True))
    calls = msg.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise bad(f"{param}.tool_calls", "a list")
        parts.extend(parse_tool_call(call, f"{param}.tool_calls[{i}]") for i, call in enumerate(calls))
    return Message("assistant", tuple(parts), opt_str(msg, "name", f"{param}.name"))


def _parse_tool_result(msg: Mapping[str, Any], param: str) -> ToolResultPart:
    call_id = msg.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise bad(f"{param}.tool_call_id", "a non-empty string")
    content = msg.get("content")
    parts = () if content is None else parse_content(content, f"{param}.content", text_only=True)
    return ToolResultPart(call_id, tuple(p for p in parts if isinstance(p, TextPart)))


def parse_messages(raw: object) -> tuple[tuple[TextPart, ...], tuple[Message, ...]]:
    if not isinstance(raw, list):
        raise bad("messages", "a list of messages")
    system: list[TextPart] = []
    messages: list[Message] = []
    pending: list[ToolResultPart] = []  # consecutive tool messages become one user message
    for i, msg in enumerate(raw):
        param = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise bad(param, "an object")
        role = msg.get("role")
        if role != "tool" and pending:
            messages.append(Message("user", tuple(pending)))
            pending = []
        if role in ("system", "developer"):
            parts = parse_content(msg.get("content"), f"{param}.content", text_only=True)
            system.extend(p for p in parts if isinstance(p, TextPart))
        elif role == "user":
            content = parse_content(msg.get("content"), f"{param}.content")
            messages.append(Message("user", content, opt_str(msg, "name", f"{param}.name")))
        elif role == "assistant":
            messages.append(_parse_assistant(msg, param))
        elif role == "tool":
            pending.append(_parse_tool_result(msg, param))
        else:
            raise InvalidRequest(f"Invalid role {role!r} in '{param}.role'.", param=f"{param}.role")
    if pending:
        messages.append(Message("user", tuple(pending)))
    return tuple(system), tuple(messages)


def _render_user(message: Message, out: list[dict[str, object]]) -> None:
    rest: list[Part] = []
    for part in message.parts:
        if isinstance(part, ToolResultPart):
            out.append({"role": "tool", "tool_call_id": part.tool_call_id, "content": text_of(part.content)})
        else:
            rest.append(part)
    if rest or not message.parts:
        msg: dict[str, object] = {"role": "user", "content": render_content(rest) if rest else ""}
        if message.name:
            msg["name"] = message.name
        out.append(msg)


def _render_assistant(message: Message) -> dict[str, object]:
    texts: list[Part] = [p for p in message.parts if isinstance(p, TextPart)]
    calls = [render_tool_call(p) for p in message.parts if isinstance(p, ToolCallPart)]
    msg: dict[str, object] = {"role": "assistant", "content": render_content(texts) if texts else None}
    if calls:
        msg["tool_calls"] = calls
    elif not texts:
        msg["content"] = ""
    if message.name:
        msg["name"] = message.name
    return msg


def render_messages(request: ChatRequest) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    if request.system:
        out.append({"role": "system", "content": render_content(list(request.system))})
    for message in request.messages:
        if message.role == "assistant":
            out.append(_render_assistant(message))
        else:
            _render_user(message, out)
    return out


