"""The Anthropic Messages dialect (``POST /v1/messages``), both directions: Anthropic SDK clients
of the gateway and the Anthropic upstream API speak it (DESIGN.md §1.1).

This module parses and renders requests; the answer shapes (message objects, SSE events, error
bodies) live in ``anthropic_stream`` and are re-exported here, so this module alone satisfies
``ChatDialect``. Imports only ``canonical``, ``errors`` and ``framing``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from tollgate.canonical import (
    AUTO,
    NO_HINTS,
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Reasoning,
    ReasoningPart,
    RouteHints,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from tollgate.dialects.anthropic_stream import AnthropicStreamDecoder, AnthropicStreamEncoder, tool_input
from tollgate.dialects.anthropic_stream import parse_error as parse_error
from tollgate.dialects.anthropic_stream import parse_response as parse_response
from tollgate.dialects.anthropic_stream import render_error as render_error
from tollgate.dialects.anthropic_stream import render_response as render_response
from tollgate.errors import InvalidRequest

name = "anthropic"

# Anthropic requires max_tokens; OpenAI and Bedrock clients may leave it out.
DEFAULT_MAX_TOKENS = 4096
# OpenAI-style effort levels as Anthropic thinking budgets: 1024 is Anthropic's minimum budget,
# and each step up is four times the last, matching how the levels are usually described.
EFFORT_BUDGETS: Mapping[str, int] = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
_MIN_BUDGET = 1024
_EPHEMERAL = {"type": "ephemeral"}

_MODELED = frozenset(
    {
        "model", "max_tokens", "messages", "system", "tools", "tool_choice", "stop_sequences",
        "temperature", "top_p", "top_k", "thinking", "metadata", "stream",
        # LiteLLM body extensions: routing wishes, never forwarded upstream.
        "fallbacks", "num_retries", "timeout", "tags",
    }
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Client side: request parsing
# ---------------------------------------------------------------------------------------------


def _fail(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _str(value: object, param: str) -> str:
    if not isinstance(value, str):
        raise _fail(f"{param}: expected a string", param)
    return value


def _int(value: object, param: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(f"{param}: expected an integer", param)
    return value


def _number(value: object, param: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _fail(f"{param}: expected a number", param)
    return float(value)


def _dict(value: object, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"{param}: expected an object", param)
    return value


def _list(value: object, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(f"{param}: expected an array", param)
    return value


def _cached(block: dict[str, Any]) -> bool:
    return isinstance(block.get("cache_control"), dict)


def _parse_text(block: dict[str, Any], param: str) -> TextPart:
    return TextPart(_str(block.get("text"), f"{param}.text"), cache_control=_cached(block))


def _parse_image(block: dict[str, Any], param: str) -> ImagePart:
    source = _dict(block.get("source"), f"{param}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type = _str(source.get("media_type"), f"{param}.source.media_type")
        return ImagePart(media_type=media_type, data=_str(source.get("data"), f"{param}.source.data"))
    if kind == "url":
        return ImagePart(url=_str(source.get("url"), f"{param}.source.url"))
    raise _fail(f"{param}.source.type: unsupported image source {kind!r}", f"{param}.source.type")


def _parse_document(block: dict[str, Any], param: str) -> DocumentPart:
    source = _dict(block.get("source"), f"{param}.source")
    title = block.get("title")
    title = title if isinstance(title, str) else None
    kind = source.get("type")
    data = _str(source.get("data"), f"{param}.source.data") if kind in ("base64", "text") else ""
    if kind == "base64":
        media_type = _str(source.get("media_type"), f"{param}.source.media_type")
        return DocumentPart(media_type, data, title)
    if kind == "text":
        # Canonical documents are base64; text/* media types are turned back into text sources.
        encoded = base64.b64encode(data.encode()).decode()
        return DocumentPart(str(source.get("media_type") or "text/plain"), encoded, title)
    raise _fail(f"{param}.source.type: unsupported document source {kind!r}", f"{param}.source.type")


def _parse_tool_use(block: dict[str, Any], param: str) -> ToolCallPart:
    arguments = _dict(block.get("input"), f"{param}.input")
    return ToolCallPart(
        id=_str(block.get("id"), f"{param}.id"),
        name=_str(block.get("name"), f"{param}.name"),
        arguments=orjson.dumps(arguments).decode(),
    )


def _parse_tool_result(block: dict[str, Any], param: str) -> ToolResultPart:
    tool_use_id = _str(block.get("tool_use_id"), f"{param}.tool_use_id")
    raw = block.get("content")
    content: tuple[TextPart | ImagePart | DocumentPart, ...] = ()
    if isinstance(raw, str):
        content = (TextPart(raw),)
    elif raw is not None:
        items: list[TextPart | ImagePart | DocumentPart] = []
        for j, item in enumerate(_list(raw, f"{param}.content")):
            item_param = f"{param}.content[{j}]"
            part = _parse_block(_dict(item, item_param), item_param)
            if not isinstance(part, TextPart | ImagePart | DocumentPart):
                raise _fail(f"{item_param}.type: tool results hold text, images or documents", item_param)
            items.append(part)
        content = tuple(items)
    if _cached(block) and content and isinstance(content[-1], TextPart):
        # Canonical parts carry cache breakpoints on text only. Claude Code marks the last
        # tool result; a breakpoint on its last text caches the same prefix.
        content = (*content[:-1], TextPart(content[-1].text, cache_control=True))
    is_error = block.get("is_error")
    return ToolResultPart(tool_use_id, content, is_error=is_error is True)


def _parse_thinking(block: dict[str, Any], param: str) -> ReasoningPart:
    signature = block.get("signature")
    return ReasoningPart(
        text=_str(block.get("thinking"), f"{param}.thinking"),
        signature=signature if isinstance(signature, str) else None,
    )


def _parse_redacted_thinking(block: dict[str, Any], param: str) -> ReasoningPart:
    return ReasoningPart(redacted=_str(block.get("data"), f"{param}.data"))


_BLOCK_PARSERS: Mapping[str, Callable[[dict[str, Any], str], Part]] = {
    "text": _parse_text,
    "image": _parse_image,
    "document": _parse_document,
    "tool_use": _parse_tool_use,
    "tool_result": _parse_tool_result,
    "thinking": _parse_thinking,
    "redacted_thinking": _parse_redacted_thinking,
}


def _parse_block(block: dict[str, Any], param: str) -> Part:
    kind = block.get("type")
    parser = _BLOCK_PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise _fail(f"{param}.type: unsupported content block type {block.get('type')!r}", f"{param}.type")
    return parser(block, param)


def _parse_message(raw: object, param: str) -> Message:
    message = _dict(raw, param)
    role = message.get("role")
    if role != "user" and role != "assistant":
        raise _fail(f"{param}.role: must be 'user' or 'assistant', got {role!r}", f"{param}.role")
    content = message.get("content")
    if isinstance(content, str):
        return Message(role, (TextPart(content),))
    blocks = _list(content, f"{param}.content")
    parts = tuple(
        _parse_block(_dict(block, f"{param}.content[{j}]"), f"{param}.content[{j}]")
        for j, block in enumerate(blocks)
    )
    return Message(role, parts)


def _parse_system(raw: object) -> tuple[TextPart, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (TextPart(raw),) if raw else ()
    parts: list[TextPart] = []
    for i, block in enumerate(_list(raw, "system")):
        block = _dict(block, f"system[{i}]")
        if block.get("type") != "text":
            raise _fail(f"system[{i}].type: system blocks must be text", f"system[{i}].type")
        parts.append(_parse_text(block, f"system[{i}]"))
    return tuple(parts)


def _parse_tools(raw: object) -> tuple[tuple[Tool, ...], list[dict[str, Any]]]:
    tools: list[Tool] = []
    server_tools: list[dict[str, Any]] = []
    for i, item in enumerate(_list(raw, "tools")):
        param = f"tools[{i}]"
        tool = _dict(item, param)
        if tool.get("type") not in (None, "custom"):
            server_tools.append(tool)  # Anthropic-run tools (web search, …) only Anthropic can serve
            continue
        description = tool.get("description")
        strict = tool.get("strict")
        tools.append(
            Tool(
                name=_str(tool.get("name"), f"{param}.name"),
                description=None if description is None else _str(description, f"{param}.description"),
                parameters=_dict(tool.get("input_schema"), f"{param}.input_schema"),
                strict=strict if isinstance(strict, bool) else None,
                cache_control=_cached(tool),
            )
        )
    return tuple(tools), server_tools


def _parse_tool_choice(raw: object) -> ToolChoice:
    if raw is None:
        return AUTO
    choice = _dict(raw, "tool_choice")
    disable = choice.get("disable_parallel_tool_use") is True
    match choice.get("type"):
        case "auto":
            return ToolChoice("auto", disable_parallel=disable)
        case "any":
            return ToolChoice("required", disable_parallel=disable)
        case "none":
            return ToolChoice("none")
        case "tool":
            return ToolChoice("tool", _str(choice.get("name"), "tool_choice.name"), disable)
    raise _fail("tool_choice.type: must be auto, any, tool or none", "tool_choice.type")


def _parse_thinking_config(raw: object, passthrough: dict[str, Any]) -> Reasoning | None:
    if raw is None:
        return None
    thinking = _dict(raw, "thinking")
    kind = thinking.get("type")
    if kind == "enabled":
        return Reasoning(budget_tokens=_int(thinking.get("budget_tokens"), "thinking.budget_tokens"))
    if kind != "disabled":
        passthrough["thinking"] = thinking  # newer modes (adaptive, …) reach Anthropic unchanged
    return None


def _parse_hints(body: dict[str, Any]) -> RouteHints:
    fallbacks = body.get("fallbacks")
    num_retries = body.get("num_retries")
    timeout = body.get("timeout")
    if fallbacks is None and num_retries is None and timeout is None:
        return NO_HINTS
    return RouteHints(
        fallbacks=None
        if fallbacks is None
        else tuple(_str(f, "fallbacks") for f in _list(fallbacks, "fallbacks")),
        num_retries=None if num_retries is None else _int(num_retries, "num_retries"),
        timeout=None if timeout is None else _number(timeout, "timeout"),
    )


def _optional_number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    return None if value is None else _number(value, key)


def parse_request(body: bytes, *, model: str | None = None) -> ChatRequest:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc
    data = _dict(data, "body")
    model = model or _str(data.get("model"), "model")
    if "max_tokens" not in data:
        raise _fail("max_tokens: field required", "max_tokens")
    max_tokens = _int(data["max_tokens"], "max_tokens")
    if max_tokens < 1:
        raise _fail("max_tokens: must be at least 1", "max_tokens")
    raw_messages = _list(data.get("messages"), "messages")
    if not raw_messages:
        raise _fail("messages: at least one message is required", "messages")
    messages = tuple(_parse_message(m, f"messages[{i}]") for i, m in enumerate(raw_messages))
    passthrough = {k: v for k, v in data.items() if k not in _MODELED}
    tools, server_tools = _parse_tools(data["tools"]) if data.get("tools") is not None else ((), [])
    if server_tools:
        passthrough["_server_tools"] = server_tools
    metadata = data.get("metadata")
    user = _dict(metadata, "metadata").get("user_id") if metadata is not None else None
    top_k = data.get("top_k")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise _fail("stream: expected a boolean", "stream")
    tags = data.get("tags")
    return ChatRequest(
        model=model,
        messages=messages,
        system=_parse_system(data.get("system")),
        tools=tools,
        tool_choice=_parse_tool_choice(data.get("tool_choice")),
        max_tokens=max_tokens,
        temperature=_optional_number(data, "temperature"),
        top_p=_optional_number(data, "top_p"),
        top_k=None if top_k is None else _int(top_k, "top_k"),
        stop=tuple(
            _str(s, "stop_sequences") for s in _list(data.get("stop_sequences") or [], "stop_sequences")
        ),
        user=None if user is None else _str(user, "metadata.user_id"),
        reasoning=_parse_thinking_config(data.get("thinking"), passthrough),
        stream=stream,
        hints=_parse_hints(data),
        tags=() if tags is None else tuple(_str(t, "tags") for t in _list(tags, "tags")),
        passthrough=passthrough,
        passthrough_dialect=name if passthrough else None,
    )


# ---------------------------------------------------------------------------------------------
# Upstream side: requests
# ---------------------------------------------------------------------------------------------


def _text_block(part: TextPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache_control:
        block["cache_control"] = dict(_EPHEMERAL)
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
    content = [item for part_item in part.content if (item := _input_block(part_item)) is not None]
    if content:
        block["content"] = content
    if part.is_error:
        block["is_error"] = True
    return block


def _input_block(part: Part) -> dict[str, Any] | None:
    match part:
        case TextPart():
            # Anthropic rejects empty text blocks; OpenAI clients send "" beside tool calls.
            return _text_block(part) if part.text else None
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


def _render_message(message: Message) -> dict[str, Any]:
    blocks = [block for part in message.parts if (block := _input_block(part)) is not None]
    return {"role": message.role, "content": blocks}


def _render_tool(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    out["input_schema"] = dict(tool.parameters)
    if tool.strict is not None:
        out["strict"] = tool.strict
    if tool.cache_control:
        out["cache_control"] = dict(_EPHEMERAL)
    return out


def _render_tool_choice(choice: ToolChoice) -> dict[str, Any] | None:
    if choice == AUTO:
        return None
    out: dict[str, Any]
    match choice.mode:
        case "auto":
            out = {"type": "auto"}
        case "required":
            out = {"type": "any"}
        case "none":
            return {"type": "none"}
        case "tool":
            out = {"type": "tool", "name": choice.name or ""}
    if choice.disable_parallel:
        out["disable_parallel_tool_use"] = True
    return out


def _render_thinking(request: ChatRequest, max_tokens: int) -> tuple[dict[str, Any] | None, int]:
    """The thinking config and the max_tokens to send (which must exceed the budget)."""
    reasoning = request.reasoning
    if reasoning is None:
        return None, max_tokens
    if reasoning.budget_tokens is not None:
        budget = reasoning.budget_tokens
        if request.max_tokens is None:
            max_tokens = max(max_tokens, budget + DEFAULT_MAX_TOKENS)
        return {"type": "enabled", "budget_tokens": budget}, max_tokens
    if reasoning.effort is None:
        return None, max_tokens
    budget = EFFORT_BUDGETS[reasoning.effort]
    if request.max_tokens is None:
        return {"type": "enabled", "budget_tokens": budget}, max(max_tokens, budget + DEFAULT_MAX_TOKENS)
    budget = min(budget, max_tokens - 1)
    if budget < _MIN_BUDGET:
        return None, max_tokens  # no room to think within the client's own output limit
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


def _check_unsupported(request: ChatRequest, drop_params: bool) -> None:
    if drop_params:
        return
    fmt = request.response_format
    if fmt is not None and fmt.kind != "text":
        raise _fail(f"response_format {fmt.kind} is not supported by Anthropic models", "response_format")
    if request.seed is not None:
        raise _fail("seed is not supported by Anthropic models", "seed")
    if request.n is not None and request.n > 1:
        raise _fail("n > 1 is not supported by Anthropic models", "n")
    # Zero penalties are what many OpenAI clients send by default; they change nothing.
    if request.presence_penalty:
        raise _fail("presence_penalty is not supported by Anthropic models", "presence_penalty")
    if request.frequency_penalty:
        raise _fail("frequency_penalty is not supported by Anthropic models", "frequency_penalty")


def render_request(request: ChatRequest, upstream_model: str, *, drop_params: bool) -> dict[str, object]:
    _check_unsupported(request, drop_params)
    thinking, max_tokens = _render_thinking(request, request.max_tokens or DEFAULT_MAX_TOKENS)
    body: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": max_tokens,
        "messages": [_render_message(m) for m in request.messages],
    }
    if len(request.system) == 1 and not request.system[0].cache_control:
        body["system"] = request.system[0].text
    elif request.system:
        body["system"] = [_text_block(part) for part in request.system]
    same_dialect = request.passthrough_dialect == name
    server_tools = request.passthrough.get("_server_tools", []) if same_dialect else []
    if request.tools or server_tools:
        body["tools"] = [_render_tool(tool) for tool in request.tools] + list(server_tools)
        choice = _render_tool_choice(request.tool_choice)
        if choice is not None:
            body["tool_choice"] = choice
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    for key in ("temperature", "top_p", "top_k"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    if thinking is not None:
        body["thinking"] = thinking
    if request.user is not None:
        body["metadata"] = {"user_id": request.user}
    if request.stream:
        body["stream"] = True
    if same_dialect:
        for key, value in request.passthrough.items():
            if key != "_server_tools" and key not in body:
                body[key] = value
    return body


# ---------------------------------------------------------------------------------------------
# Streams (implemented with the other answer shapes in anthropic_stream)
# ---------------------------------------------------------------------------------------------


def stream_encoder(request: ChatRequest) -> AnthropicStreamEncoder:
    return AnthropicStreamEncoder(request.model)


def stream_decoder() -> AnthropicStreamDecoder:
    return AnthropicStreamDecoder()
