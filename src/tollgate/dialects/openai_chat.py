"""The OpenAI chat completions dialect (``/chat/completions``), both directions.

Client side: OpenAI (and LiteLLM-extended) request bodies → ``ChatRequest``; canonical answers →
``chat.completion`` bodies, chunk streams and error bodies. Upstream side: ``ChatRequest`` →
OpenAI-compatible request bodies; their answers, streams and errors → canonical. The stream
state machines live in ``openai_stream``. Imports ``canonical``, ``errors`` and ``framing`` only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal, cast

import orjson

from tollgate.canonical import (
    AUTO,
    ChatRequest,
    ChatResponse,
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
from tollgate.dialects.openai_stream import (
    FINISH_FROM_OPENAI,
    FINISH_TO_OPENAI,
    ChunkDecoder,
    ChunkEncoder,
    error_from_payload,
    error_headers,
    error_object,
    usage_from_openai,
    usage_to_openai,
)
from tollgate.errors import GatewayError, InvalidRequest, UpstreamError

name = "openai"

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


def _parse_tool_call(call: object, param: str) -> ToolCallPart:
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


def _parse_reasoning(msg: Mapping[str, Any], param: str) -> tuple[ReasoningPart, ...]:
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
    parts: list[Part] = list(_parse_reasoning(msg, param))
    content = msg.get("content")
    if content is not None and content != "":
        parts.extend(_parse_content(content, f"{param}.content", text_only=True))
    calls = msg.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise _bad(f"{param}.tool_calls", "a list")
        parts.extend(_parse_tool_call(call, f"{param}.tool_calls[{i}]") for i, call in enumerate(calls))
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
        passthrough_dialect=name if passthrough else None,
    )


# ---- client answers ----------------------------------------------------------------------------


def _text_of(parts: tuple[Part, ...]) -> str:
    return "".join(p.text for p in parts if isinstance(p, TextPart))


def _render_tool_call(part: ToolCallPart) -> dict[str, object]:
    return {"id": part.id, "type": "function", "function": {"name": part.name, "arguments": part.arguments}}


def render_response(response: ChatResponse) -> bytes:
    texts = [p.text for p in response.parts if isinstance(p, TextPart)]
    message: dict[str, object] = {"role": "assistant", "content": "".join(texts) if texts else None}
    calls = [_render_tool_call(p) for p in response.parts if isinstance(p, ToolCallPart)]
    if calls:
        message["tool_calls"] = calls
    reasoning = [p for p in response.parts if isinstance(p, ReasoningPart)]
    if reasoning:
        message["reasoning_content"] = "".join(p.text for p in reasoning)
        if any(p.signature or p.redacted for p in reasoning):
            message["thinking_blocks"] = [_thinking_block(p) for p in reasoning]
    message["refusal"] = None
    message["annotations"] = []
    return orjson.dumps(
        {
            "id": response.id,
            "object": "chat.completion",
            "created": response.created or int(time.time()),
            "model": response.model,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": FINISH_TO_OPENAI[response.finish_reason],
                }
            ],
            "usage": usage_to_openai(response.usage),
        }
    )


def _thinking_block(part: ReasoningPart) -> dict[str, object]:
    if part.redacted:
        return {"type": "redacted_thinking", "data": part.redacted}
    return {"type": "thinking", "thinking": part.text, "signature": part.signature}


def stream_encoder(request: ChatRequest) -> ChunkEncoder:
    return ChunkEncoder(request)


def render_error(err: GatewayError) -> tuple[int, bytes, Mapping[str, str]]:
    return err.status, orjson.dumps(error_object(err)), error_headers(err)


# ---- upstream request --------------------------------------------------------------------------


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


def _content(parts: list[Part]) -> str | list[dict[str, object]]:
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return parts[0].text
    return [_render_part(p) for p in parts]


def _render_user(message: Message, out: list[dict[str, object]]) -> None:
    rest: list[Part] = []
    for part in message.parts:
        if isinstance(part, ToolResultPart):
            out.append({"role": "tool", "tool_call_id": part.tool_call_id, "content": _text_of(part.content)})
        else:
            rest.append(part)
    if rest or not message.parts:
        msg: dict[str, object] = {"role": "user", "content": _content(rest) if rest else ""}
        if message.name:
            msg["name"] = message.name
        out.append(msg)


def _render_assistant(message: Message) -> dict[str, object]:
    texts: list[Part] = [p for p in message.parts if isinstance(p, TextPart)]
    calls = [_render_tool_call(p) for p in message.parts if isinstance(p, ToolCallPart)]
    msg: dict[str, object] = {"role": "assistant", "content": _content(texts) if texts else None}
    if calls:
        msg["tool_calls"] = calls
    elif not texts:
        msg["content"] = ""
    if message.name:
        msg["name"] = message.name
    return msg


def _render_messages(request: ChatRequest) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    if request.system:
        out.append({"role": "system", "content": _content(list(request.system))})
    for message in request.messages:
        if message.role == "assistant":
            out.append(_render_assistant(message))
        else:
            _render_user(message, out)
    return out


def _render_tools(request: ChatRequest, body: dict[str, object]) -> None:
    if not request.tools:
        return  # OpenAI rejects tool_choice and parallel_tool_calls without tools
    tools = []
    for tool in request.tools:
        fn: dict[str, object] = {"name": tool.name}
        if tool.description is not None:
            fn["description"] = tool.description
        fn["parameters"] = tool.parameters
        if tool.strict is not None:
            fn["strict"] = tool.strict
        tools.append({"type": "function", "function": fn})
    body["tools"] = tools
    choice = request.tool_choice
    if choice.mode == "tool":
        body["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    elif choice.mode != "auto":
        body["tool_choice"] = choice.mode
    if choice.disable_parallel:
        body["parallel_tool_calls"] = False


def _render_response_format(fmt: ResponseFormat) -> dict[str, object]:
    if fmt.kind != "json_schema":
        return {"type": fmt.kind}
    spec: dict[str, object] = {"name": fmt.name or "response", "schema": fmt.schema or {}}
    if fmt.strict is not None:
        spec["strict"] = fmt.strict
    return {"type": "json_schema", "json_schema": spec}


def _unsupported(param: str, drop_params: bool) -> None:
    if not drop_params:
        raise InvalidRequest(
            f"'{param}' is not supported by this OpenAI-compatible upstream; set drop_params to omit it.",
            param=param,
        )


def render_request(request: ChatRequest, upstream_model: str, *, drop_params: bool) -> dict[str, object]:
    body: dict[str, object] = {"model": upstream_model, "messages": _render_messages(request)}
    _render_tools(request, body)
    optional: dict[str, object | None] = {
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "stop": list(request.stop) if request.stop else None,
        "seed": request.seed,
        "user": request.user,
        "n": request.n,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
    }
    body.update((k, v) for k, v in optional.items() if v is not None)
    if request.top_k is not None:
        _unsupported("top_k", drop_params)
    if request.response_format is not None:
        body["response_format"] = _render_response_format(request.response_format)
    if request.reasoning is not None:
        if request.reasoning.budget_tokens is not None:
            _unsupported("thinking.budget_tokens", drop_params)
        if request.reasoning.effort is not None:
            body["reasoning_effort"] = request.reasoning.effort
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # the gateway meters every stream
    if request.passthrough_dialect == name:
        for key, value in request.passthrough.items():
            body.setdefault(key, value)
    return body


# ---- upstream answers --------------------------------------------------------------------------


def _parse_message_parts(message: Mapping[str, Any]) -> tuple[Part, ...]:
    parts: list[Part] = list(_parse_reasoning(message, "message"))
    if not parts and isinstance(message.get("reasoning"), str) and message["reasoning"]:
        parts.append(ReasoningPart(message["reasoning"]))  # vLLM and OpenRouter spell it so
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append(TextPart(content))
    elif isinstance(content, list):
        texts = (p.get("text") for p in content if isinstance(p, dict))
        parts.extend(TextPart(text) for text in texts if isinstance(text, str))
    elif isinstance(message.get("refusal"), str):
        parts.append(TextPart(message["refusal"]))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        parts.extend(_parse_tool_call(call, "tool_calls") for call in calls)
    return tuple(parts)


def parse_response(body: bytes) -> ChatResponse:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(f"malformed response from upstream: {body[:200]!r}") from None
    if isinstance(data, dict) and "error" in data:
        raise error_from_payload(500, data, body, {})
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(choices, list) or not choices:
        raise UpstreamError("malformed response from upstream: no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise UpstreamError("malformed response from upstream: no message")
    try:
        parts = _parse_message_parts(message)
    except InvalidRequest as exc:
        raise UpstreamError(f"malformed response from upstream: {exc.message}") from None
    finish = choice.get("finish_reason")
    created = data.get("created")
    return ChatResponse(
        id=str(data.get("id") or ""),
        model=str(data.get("model") or ""),
        parts=parts,
        finish_reason=FINISH_FROM_OPENAI.get(finish, "end_turn") if isinstance(finish, str) else "end_turn",
        usage=usage_from_openai(data.get("usage")),
        created=created if isinstance(created, int) else 0,
    )


def stream_decoder() -> ChunkDecoder:
    return ChunkDecoder()


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    try:
        payload: object = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    return error_from_payload(status, payload, body, headers)
