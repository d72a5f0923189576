"""OpenAI chat completions request bodies (and LiteLLM's extensions of them) → ``ChatRequest``.

The client half of ``openai_chat``, which re-exports ``parse_request``; ``parse_tool_call`` and
``parse_reasoning`` also read upstream answers there. Imports ``canonical`` and ``errors`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

import orjson

from tollgate.canonical import (
    AUTO,
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    Reasoning,
    ReasoningPart,
    ResponseFormat,
    RouteHints,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from tollgate.errors import InvalidRequest

NAME = "openai"  # the dialect's name (``openai_chat.name``); it tags the fields passed through
_MODELED = frozenset(
    {
        "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "max_tokens",
        "max_completion_tokens", "temperature", "top_p", "top_k", "stop", "seed", "user", "n",
        "presence_penalty", "frequency_penalty", "response_format", "reasoning_effort", "thinking",
        "stream", "stream_options", "metadata", "tags", "fallbacks", "num_retries", "priority",
        "timeout",
    }
)  # fmt: skip
# LiteLLM proxy controls that must never reach an upstream (a client-chosen key or base URL).
_GATEWAY_ONLY = frozenset({"api_key", "api_base", "base_url", "mock_response", "caching", "no-log"})
Effort = Literal["minimal", "low", "medium", "high"] | None
_EFFORTS = frozenset({"minimal", "low", "medium", "high"})


# ---- field checks ------------------------------------------------------------------------------


def _bad(param: str, expected: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid value for '{param}': expected {expected}.", param=param)


def _opt_str(obj: Mapping[str, Any], key: str, param: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _bad(param, "a string")


def _opt_int(obj: Mapping[str, Any], key: str, minimum: int | None = None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum):
        raise _bad(key, "an integer" if minimum is None else f"an integer >= {minimum}")
    return value


def _opt_float(obj: Mapping[str, Any], key: str, minimum: float | None = None) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    bad_type = not isinstance(value, int | float) or isinstance(value, bool)
    if bad_type or (minimum is not None and value < minimum):
        raise _bad(key, "a number" if minimum is None else f"a number >= {minimum}")
    return float(value)


def _opt_bool(obj: Mapping[str, Any], key: str, param: str) -> bool | None:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise _bad(param, "a boolean")


def _str_list(value: object, param: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise _bad(param, "a string or a list of strings")


# ---- client request: messages ------------------------------------------------------------------


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
        raise _bad(f"{param}.text", "a string")
    return TextPart(text)


def _parse_image(part: Mapping[str, Any], param: str) -> ImagePart:
    image = part.get("image_url")
    if isinstance(image, str):
        image = {"url": image}
    if not isinstance(image, dict) or not isinstance(image.get("url"), str):
        raise _bad(f"{param}.image_url.url", "a string")
    detail = _opt_str(image, "detail", f"{param}.image_url.detail")
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
    filename = _opt_str(file, "filename", f"{param}.file.filename")
    inline = _data_url(file["file_data"], f"{param}.file.file_data")
    media_type, data = inline if inline is not None else ("application/pdf", file["file_data"])
    return DocumentPart(media_type=media_type, data=data, name=filename)


def _parse_content(content: object, param: str, *, text_only: bool = False) -> tuple[Part, ...]:
    if isinstance(content, str):
        return (TextPart(content),)
    if not isinstance(content, list):
        raise _bad(param, "a string or a list of content parts")
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
        raise _bad(f"{param}.function", "an object")
    call_id = call.get("id")
    fn_name = function.get("name")
    if not isinstance(call_id, str) or not isinstance(fn_name, str):
        raise _bad(f"{param}.id", "tool call id and function.name strings")
    arguments = function.get("arguments", "{}")
    if isinstance(arguments, dict):
        arguments = orjson.dumps(arguments).decode()
    elif not isinstance(arguments, str):
        raise _bad(f"{param}.function.arguments", "a JSON string")
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
    text = _opt_str(msg, "reasoning_content", f"{param}.reasoning_content")
    return (ReasoningPart(text),) if text else ()


def _parse_assistant(msg: Mapping[str, Any], param: str) -> Message:
    parts: list[Part] = list(parse_reasoning(msg, param))
    content = msg.get("content")
    if content is not None and content != "":
        parts.extend(_parse_content(content, f"{param}.content", text_only=True))
    calls = msg.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise _bad(f"{param}.tool_calls", "a list")
        parts.extend(parse_tool_call(call, f"{param}.tool_calls[{i}]") for i, call in enumerate(calls))
    return Message("assistant", tuple(parts), _opt_str(msg, "name", f"{param}.name"))


def _parse_tool_result(msg: Mapping[str, Any], param: str) -> ToolResultPart:
    call_id = msg.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise _bad(f"{param}.tool_call_id", "a non-empty string")
    content = msg.get("content")
    parts = () if content is None else _parse_content(content, f"{param}.content", text_only=True)
    return ToolResultPart(call_id, tuple(p for p in parts if isinstance(p, TextPart)))


def _parse_messages(raw: object) -> tuple[tuple[TextPart, ...], tuple[Message, ...]]:
    if not isinstance(raw, list):
        raise _bad("messages", "a list of messages")
    system: list[TextPart] = []
    messages: list[Message] = []
    pending: list[ToolResultPart] = []  # consecutive tool messages become one user message
    for i, msg in enumerate(raw):
        param = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise _bad(param, "an object")
        role = msg.get("role")
        if role != "tool" and pending:
            messages.append(Message("user", tuple(pending)))
            pending = []
        if role in ("system", "developer"):
            parts = _parse_content(msg.get("content"), f"{param}.content", text_only=True)
            system.extend(p for p in parts if isinstance(p, TextPart))
        elif role == "user":
            content = _parse_content(msg.get("content"), f"{param}.content")
            messages.append(Message("user", content, _opt_str(msg, "name", f"{param}.name")))
        elif role == "assistant":
            messages.append(_parse_assistant(msg, param))
        elif role == "tool":
            pending.append(_parse_tool_result(msg, param))
        else:
            raise InvalidRequest(f"Invalid role {role!r} in '{param}.role'.", param=f"{param}.role")
    if pending:
        messages.append(Message("user", tuple(pending)))
    return tuple(system), tuple(messages)


# ---- client request: options -------------------------------------------------------------------


def _parse_tools(raw: object) -> tuple[Tool, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _bad("tools", "a list")
    tools = []
    for i, item in enumerate(raw):
        fn = item.get("function") if isinstance(item, dict) else None
        if not isinstance(fn, dict) or item.get("type", "function") != "function":
            raise _bad(f"tools[{i}]", 'an object with type "function" and a function object')
        fn_name = fn.get("name")
        if not isinstance(fn_name, str) or not fn_name:
            raise _bad(f"tools[{i}].function.name", "a non-empty string")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise _bad(f"tools[{i}].function.parameters", "a JSON schema object")
        tools.append(
            Tool(
                name=fn_name,
                description=_opt_str(fn, "description", f"tools[{i}].function.description"),
                parameters=params if params is not None else {"type": "object", "properties": {}},
                strict=_opt_bool(fn, "strict", f"tools[{i}].function.strict"),
            )
        )
    return tuple(tools)


def _parse_tool_choice(raw: object, parallel: object) -> ToolChoice:
    if parallel is not None and not isinstance(parallel, bool):
        raise _bad("parallel_tool_calls", "a boolean")
    disable = parallel is False
    if raw is None or raw == "auto":
        return ToolChoice(disable_parallel=disable) if disable else AUTO
    if raw in ("none", "required"):
        return ToolChoice("none" if raw == "none" else "required", disable_parallel=disable)
    fn = raw.get("function") if isinstance(raw, dict) and raw.get("type") == "function" else None
    fn_name = fn.get("name") if isinstance(fn, dict) else None
    if isinstance(fn_name, str) and fn_name:
        return ToolChoice("tool", fn_name, disable_parallel=disable)
    raise _bad("tool_choice", '"auto", "none", "required" or {"type": "function", "function": {"name"}}')


def _parse_response_format(raw: object) -> ResponseFormat | None:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text" or kind == "json_object":
        return ResponseFormat(kind)
    if kind == "json_schema" and isinstance(raw, dict):
        spec = raw.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise _bad("response_format.json_schema", "an object with a schema")
        return ResponseFormat(
            "json_schema",
            schema=spec.get("schema"),
            name=_opt_str(spec, "name", "response_format.json_schema.name"),
            strict=_opt_bool(spec, "strict", "response_format.json_schema.strict"),
        )
    raise _bad("response_format.type", '"text", "json_object" or "json_schema"')


def _parse_reasoning_options(body: Mapping[str, Any], passthrough: dict[str, Any]) -> Reasoning | None:
    effort = body.get("reasoning_effort")
    if effort is not None and not isinstance(effort, str):
        raise _bad("reasoning_effort", "a string")
    if effort is not None and effort not in _EFFORTS:
        passthrough["reasoning_effort"] = effort  # a newer level ("none", "xhigh"): forward as is
        effort = None
    budget = None
    thinking = body.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict):
            raise _bad("thinking", "an object")
        if thinking.get("type") == "enabled":
            budget = _opt_int(thinking, "budget_tokens", 1)
    if effort is None and budget is None:
        return None
    return Reasoning(budget_tokens=budget, effort=cast(Effort, effort))


def _parse_route(body: Mapping[str, Any]) -> tuple[RouteHints, tuple[str, ...], Mapping[str, Any]]:
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _bad("metadata", "an object")
    tags: list[str] = []
    for raw, param in ((body.get("tags"), "tags"), ((metadata or {}).get("tags"), "metadata.tags")):
        if raw is not None and not isinstance(raw, list):
            raise _bad(param, "a list of strings")
        tags.extend(t for t in _str_list(raw, param) if t not in tags)
    fallbacks = body.get("fallbacks")
    if fallbacks is not None:
        if not isinstance(fallbacks, list):
            raise _bad("fallbacks", "a list of model names")
        names = [f.get("model") if isinstance(f, dict) else f for f in fallbacks]
        fallbacks = tuple(_str_list(names, "fallbacks"))
    hints = RouteHints(
        fallbacks=fallbacks,
        num_retries=_opt_int(body, "num_retries", 0),
        priority=_opt_int(body, "priority"),
        timeout=_opt_float(body, "timeout", 0),
    )
    return hints, tuple(tags), metadata or {}


def parse_request(body: bytes, *, model: str | None = None) -> ChatRequest:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model_name = data.get("model", model)
    if not isinstance(model_name, str) or not model_name:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    if "messages" not in data:
        raise InvalidRequest("'messages' is required.", param="messages")
    system, messages = _parse_messages(data["messages"])
    passthrough = {k: v for k, v in data.items() if k not in _MODELED and k not in _GATEWAY_ONLY}
    stream_options = data.get("stream_options")
    stream_options = {} if stream_options is None else stream_options
    if not isinstance(stream_options, dict):
        raise _bad("stream_options", "an object")
    max_tokens = _opt_int(data, "max_completion_tokens", 1)
    hints, tags, metadata = _parse_route(data)
    return ChatRequest(
        model=model_name,
        messages=messages,
        system=system,
        tools=_parse_tools(data.get("tools")),
        tool_choice=_parse_tool_choice(data.get("tool_choice"), data.get("parallel_tool_calls")),
        max_tokens=max_tokens if max_tokens is not None else _opt_int(data, "max_tokens", 1),
        temperature=_opt_float(data, "temperature", 0),
        top_p=_opt_float(data, "top_p", 0),
        top_k=_opt_int(data, "top_k", 0),
        stop=_str_list(data.get("stop"), "stop"),
        seed=_opt_int(data, "seed"),
        user=_opt_str(data, "user", "user"),
        n=_opt_int(data, "n", 1),
        presence_penalty=_opt_float(data, "presence_penalty"),
        frequency_penalty=_opt_float(data, "frequency_penalty"),
        response_format=_parse_response_format(data.get("response_format")),
        reasoning=_parse_reasoning_options(data, passthrough),
        stream=bool(_opt_bool(data, "stream", "stream")),
        include_usage=bool(_opt_bool(stream_options, "include_usage", "stream_options.include_usage")),
        hints=hints,
        tags=tags,
        metadata=metadata,
        passthrough=passthrough,
        passthrough_dialect=NAME if passthrough else None,
    )
