"""The Bedrock Converse / ConverseStream dialect, both ways.

boto3 clients call the gateway with it (``POST /model/{modelId}/converse`` and
``/converse-stream``; the model id comes from the path) and the Bedrock upstream speaks it. Binary
fields (image and document bytes, redacted reasoning) travel as base64 text in JSON, which is also
how canonical parts carry them. The stream half lives in ``bedrock_stream``.

The path decides streaming: ``parse_request`` cannot see it, so the edge sets ``stream=True`` on the
parsed request for ``/converse-stream``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

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
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from tollgate.dialects.bedrock_stream import (
    ERROR_TYPES,
    FINISH_TO_BEDROCK,
    PROVIDER,
    BedrockStreamDecoder,
    BedrockStreamEncoder,
    error_from_response,
    finish_from_bedrock,
    parse_usage,
    render_usage,
)
from tollgate.errors import GatewayError, InvalidRequest, UpstreamError

name = "bedrock"

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
_PASSTHROUGH_KEYS = (
    "guardrailConfig",
    "promptVariables",
    "additionalModelResponseFieldPaths",
    "performanceConfig",
    "serviceTier",
    "outputConfig",
)
# LiteLLM's reasoning_effort → Anthropic thinking budgets (Anthropic's minimum is 1024).
_EFFORT_BUDGETS: Mapping[str, int] = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}
_DOCUMENT_NAME_BAD = re.compile(r"[^A-Za-z0-9\-()\[\] ]+")
_CACHE_POINT: Mapping[str, Any] = {"cachePoint": {"type": "default"}}


# ---- small typed readers -----------------------------------------------------------------------


def _obj(value: object, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{param}' must be an object", param=param)
    return value


def _list(value: object, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest(f"'{param}' must be an array", param=param)
    return value


def _str(value: object, param: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"'{param}' must be a string", param=param)
    return value


def _opt_int(value: object, param: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(f"'{param}' must be an integer", param=param)
    return value


def _opt_float(value: object, param: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidRequest(f"'{param}' must be a number", param=param)
    return float(value)


# ---- client side: parse a Converse request -----------------------------------------------------


def parse_request(body: bytes, *, model: str | None = None) -> ChatRequest:
    if not model:
        raise InvalidRequest("the model id must be given in the path /model/{modelId}/…", param="modelId")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from exc
    data = _obj(data, "body")
    messages = tuple(
        _parse_message(m, f"messages[{i}]") for i, m in enumerate(_list(data.get("messages"), "messages"))
    )
    system = _parse_system(data.get("system"))
    config = _obj(data.get("inferenceConfig") or {}, "inferenceConfig")
    stop = _list(config.get("stopSequences") or [], "inferenceConfig.stopSequences")
    tools, tool_choice = _parse_tool_config(data.get("toolConfig"))
    top_k, reasoning, extra_fields = _parse_additional(data.get("additionalModelRequestFields"))
    passthrough = {key: data[key] for key in _PASSTHROUGH_KEYS if key in data}
    if extra_fields:
        passthrough["additionalModelRequestFields"] = extra_fields
    metadata = data.get("requestMetadata")
    return ChatRequest(
        model=model,
        messages=messages,
        system=system,
        tools=tools,
        tool_choice=tool_choice,
        max_tokens=_opt_int(config.get("maxTokens"), "inferenceConfig.maxTokens"),
        temperature=_opt_float(config.get("temperature"), "inferenceConfig.temperature"),
        top_p=_opt_float(config.get("topP"), "inferenceConfig.topP"),
        top_k=top_k,
        stop=tuple(_str(s, f"inferenceConfig.stopSequences[{i}]") for i, s in enumerate(stop)),
        reasoning=reasoning,
        metadata=_obj(metadata, "requestMetadata") if metadata is not None else {},
        passthrough=passthrough,
        passthrough_dialect="bedrock",
    )


def _parse_message(value: object, param: str) -> Message:
    data = _obj(value, param)
    role = data.get("role")
    if role != "user" and role != "assistant":
        raise InvalidRequest(f"'{param}.role' must be 'user' or 'assistant'", param=f"{param}.role")
    return Message(role, _parse_content(data.get("content"), f"{param}.content", strict=True))


def _parse_content(value: object, param: str, *, strict: bool) -> tuple[Part, ...]:
    parts: list[Part] = []
    for j, block in enumerate(_list(value, param)):
        block_param = f"{param}[{j}]"
        block = _obj(block, block_param)
        if "cachePoint" in block:
            _mark_cache(parts)
            continue
        key = next(iter(block), "")
        parser = _BLOCK_PARSERS.get(key)
        if parser is None:
            if strict:
                raise InvalidRequest(f"unsupported content block {key!r} in {block_param}", param=block_param)
            continue  # responses may carry blocks the gateway cannot represent (citations, …)
        parts.append(parser(block[key], f"{block_param}.{key}"))
    return tuple(parts)


def _mark_cache(parts: list[Part]) -> None:
    """A cachePoint block marks the end of the preceding part; canonical keeps that on text only."""
    if not parts:
        return
    last = parts[-1]
    if isinstance(last, TextPart):
        parts[-1] = replace(last, cache_control=True)
    elif isinstance(last, ToolResultPart) and last.content and isinstance(last.content[-1], TextPart):
        marked = replace(last.content[-1], cache_control=True)
        parts[-1] = replace(last, content=(*last.content[:-1], marked))


def _parse_text(value: object, param: str) -> TextPart:
    return TextPart(_str(value, param))


def _parse_image(value: object, param: str) -> ImagePart:
    data = _obj(value, param)
    fmt = data.get("format")
    if fmt not in IMAGE_FORMATS:
        raise InvalidRequest(f"'{param}.format' must be one of png, jpeg, gif, webp", param=f"{param}.format")
    return ImagePart(media_type=f"image/{fmt}", data=_source_bytes(data.get("source"), f"{param}.source"))


def _parse_document(value: object, param: str) -> DocumentPart:
    data = _obj(value, param)
    fmt = data.get("format", "txt")
    media_type = DOCUMENT_MEDIA_TYPES.get(fmt) if isinstance(fmt, str) else None
    if media_type is None:
        raise InvalidRequest(f"unsupported document format {fmt!r}", param=f"{param}.format")
    doc_name = data.get("name")
    source = _obj(data.get("source"), f"{param}.source")
    if isinstance(source.get("text"), str):
        encoded = base64.b64encode(source["text"].encode("utf-8")).decode("ascii")
    else:
        encoded = _source_bytes(source, f"{param}.source")
    return DocumentPart(media_type, encoded, doc_name if isinstance(doc_name, str) else None)


def _source_bytes(value: object, param: str) -> str:
    source = _obj(value, param)
    if "bytes" not in source:
        raise InvalidRequest(f"'{param}' must carry 'bytes' (S3 locations are not supported)", param=param)
    return _str(source["bytes"], f"{param}.bytes")


def _parse_tool_use(value: object, param: str) -> ToolCallPart:
    data = _obj(value, param)
    return ToolCallPart(
        id=_str(data.get("toolUseId"), f"{param}.toolUseId"),
        name=_str(data.get("name"), f"{param}.name"),
        arguments=orjson.dumps(data.get("input", {})).decode(),
    )


def _parse_tool_result(value: object, param: str) -> ToolResultPart:
    data = _obj(value, param)
    content: list[TextPart | ImagePart | DocumentPart] = []
    for j, block in enumerate(_list(data.get("content", []), f"{param}.content")):
        block_param = f"{param}.content[{j}]"
        block = _obj(block, block_param)
        if "text" in block:
            content.append(_parse_text(block["text"], f"{block_param}.text"))
        elif "json" in block:
            content.append(TextPart(orjson.dumps(block["json"]).decode()))
        elif "image" in block:
            content.append(_parse_image(block["image"], f"{block_param}.image"))
        elif "document" in block:
            content.append(_parse_document(block["document"], f"{block_param}.document"))
        elif "cachePoint" not in block:
            raise InvalidRequest(f"unsupported tool result block in '{block_param}'", param=block_param)
    return ToolResultPart(
        tool_call_id=_str(data.get("toolUseId"), f"{param}.toolUseId"),
        content=tuple(content),
        is_error=data.get("status") == "error",
    )


def _parse_reasoning(value: object, param: str) -> ReasoningPart:
    data = _obj(value, param)
    if "redactedContent" in data:
        return ReasoningPart(redacted=_str(data["redactedContent"], f"{param}.redactedContent"))
    text = _obj(data.get("reasoningText"), f"{param}.reasoningText")
    signature = text.get("signature")
    return ReasoningPart(
        text=_str(text.get("text", ""), f"{param}.reasoningText.text"),
        signature=signature if isinstance(signature, str) else None,
    )


_BLOCK_PARSERS: Mapping[str, Callable[[object, str], Part]] = {
    "text": _parse_text,
    "image": _parse_image,
    "document": _parse_document,
    "toolUse": _parse_tool_use,
    "toolResult": _parse_tool_result,
    "reasoningContent": _parse_reasoning,
}


def _parse_system(value: object) -> tuple[TextPart, ...]:
    if value is None:
        return ()
    parts: list[Part] = []
    for i, block in enumerate(_list(value, "system")):
        block = _obj(block, f"system[{i}]")
        if "cachePoint" in block:
            _mark_cache(parts)
        elif "text" in block:
            parts.append(_parse_text(block["text"], f"system[{i}].text"))
        else:
            raise InvalidRequest(f"unsupported system block in 'system[{i}]'", param=f"system[{i}]")
    return tuple(p for p in parts if isinstance(p, TextPart))


def _parse_tool_config(value: object) -> tuple[tuple[Tool, ...], ToolChoice]:
    if value is None:
        return (), AUTO
    config = _obj(value, "toolConfig")
    tools: list[Tool] = []
    for i, item in enumerate(_list(config.get("tools", []), "toolConfig.tools")):
        param = f"toolConfig.tools[{i}]"
        item = _obj(item, param)
        if "cachePoint" in item:
            if tools:
                tools[-1] = replace(tools[-1], cache_control=True)
            continue
        spec = _obj(item.get("toolSpec"), f"{param}.toolSpec")
        schema = _obj(spec.get("inputSchema"), f"{param}.toolSpec.inputSchema")
        description, strict = spec.get("description"), spec.get("strict")
        tools.append(
            Tool(
                name=_str(spec.get("name"), f"{param}.toolSpec.name"),
                description=description if isinstance(description, str) else None,
                parameters=_obj(schema.get("json"), f"{param}.toolSpec.inputSchema.json"),
                strict=strict if isinstance(strict, bool) else None,
            )
        )
    return tuple(tools), _parse_tool_choice(config.get("toolChoice"))


def _parse_tool_choice(value: object) -> ToolChoice:
    if value is None:
        return AUTO
    choice = _obj(value, "toolConfig.toolChoice")
    if "auto" in choice:
        return AUTO
    if "any" in choice:
        return ToolChoice("required")
    if "tool" in choice:
        tool = _obj(choice["tool"], "toolConfig.toolChoice.tool")
        return ToolChoice("tool", _str(tool.get("name"), "toolConfig.toolChoice.tool.name"))
    raise InvalidRequest("'toolConfig.toolChoice' must be auto, any or tool", param="toolConfig.toolChoice")


def _parse_additional(value: object) -> tuple[int | None, Reasoning | None, dict[str, Any]]:
    if value is None:
        return None, None, {}
    rest = dict(_obj(value, "additionalModelRequestFields"))
    top_k = _opt_int(rest.pop("top_k", None), "additionalModelRequestFields.top_k")
    reasoning = None
    thinking = rest.pop("thinking", None)
    if thinking is not None:
        thinking = _obj(thinking, "additionalModelRequestFields.thinking")
        if thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens")
            reasoning = Reasoning(_opt_int(budget, "additionalModelRequestFields.thinking.budget_tokens"))
        elif thinking.get("type") != "disabled":
            rest["thinking"] = thinking  # adaptive or newer modes: only a Bedrock upstream knows them
    return top_k, reasoning, rest


# ---- client side: render a response or an error -----------------------------------------------


def render_response(response: ChatResponse) -> bytes:
    content = [_render_output_part(p) for p in response.parts]
    body: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": FINISH_TO_BEDROCK[response.finish_reason],
        "usage": render_usage(response.usage),
        "metrics": {"latencyMs": 0},
    }
    if response.stop_sequence is not None:
        body["additionalModelResponseFields"] = {"stop_sequence": response.stop_sequence}
    return orjson.dumps(body)


def _render_output_part(part: Part) -> dict[str, Any]:
    if isinstance(part, ToolCallPart):
        return {"toolUse": {"toolUseId": part.id, "name": part.name, "input": tool_input(part.arguments)}}
    if isinstance(part, ReasoningPart):
        return _render_reasoning(part)
    if isinstance(part, TextPart):
        return {"text": part.text}
    rendered = _render_part(part, drop_params=True)
    return rendered[0] if rendered else {"text": ""}


def stream_encoder(request: ChatRequest) -> BedrockStreamEncoder:
    return BedrockStreamEncoder()


def render_error(err: GatewayError) -> tuple[int, bytes, Mapping[str, str]]:
    error_type, status = ERROR_TYPES.get(err.kind, ("InternalServerException", 500))
    headers = {"x-amzn-ErrorType": error_type, "content-type": "application/json"}
    return status if status is not None else err.status, orjson.dumps({"message": err.message}), headers


# ---- upstream side: render a Converse request --------------------------------------------------


def render_request(request: ChatRequest, upstream_model: str, *, drop_params: bool) -> dict[str, object]:
    """The body for ``POST /model/{upstream_model}/converse`` (the model id goes in the URL).

    Bedrock has no ``tool_choice: none``: toolChoice is left out, and the tools too when
    ``drop_params`` is set (otherwise ``InvalidRequest``). Message order is not fixed up.
    """
    _check_unsupported(request, drop_params)
    body: dict[str, Any] = {
        "messages": [
            {"role": m.role, "content": _render_parts(m.parts, drop_params, f"messages[{i}]")}
            for i, m in enumerate(request.messages)
        ]
    }
    if request.system:
        body["system"] = _render_parts(request.system, drop_params, "system")
    config: dict[str, Any] = {}
    if request.max_tokens is not None:
        config["maxTokens"] = request.max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if config:
        body["inferenceConfig"] = config
    tool_config = _render_tool_config(request, drop_params)
    if tool_config is not None:
        body["toolConfig"] = tool_config
    passthrough = request.passthrough if request.passthrough_dialect == name else {}
    additional = dict(passthrough.get("additionalModelRequestFields") or {})
    if request.top_k is not None:
        additional["top_k"] = request.top_k
    budget = _thinking_budget(request)
    if budget is not None:
        additional["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if additional:
        body["additionalModelRequestFields"] = additional
    for key in _PASSTHROUGH_KEYS:
        if key in passthrough:
            body[key] = passthrough[key]
    return body


def _check_unsupported(request: ChatRequest, drop_params: bool) -> None:
    if drop_params:
        return
    fmt = request.response_format
    checks = (
        ("response_format", fmt is not None and fmt.kind != "text"),
        ("seed", request.seed is not None),
        ("n", request.n is not None and request.n > 1),
        ("presence_penalty", request.presence_penalty is not None),
        ("frequency_penalty", request.frequency_penalty is not None),
    )
    for param, present in checks:
        if present:
            raise InvalidRequest(f"Bedrock Converse does not support '{param}'", param=param)


def _thinking_budget(request: ChatRequest) -> int | None:
    reasoning = request.reasoning
    if reasoning is None:
        return None
    if reasoning.budget_tokens is not None:
        return reasoning.budget_tokens
    return _EFFORT_BUDGETS.get(reasoning.effort) if reasoning.effort is not None else None


def _render_tool_config(request: ChatRequest, drop_params: bool) -> dict[str, Any] | None:
    if not request.tools:
        return None
    choice = request.tool_choice
    if choice.mode == "none":
        if drop_params:
            return None
        raise InvalidRequest("Bedrock Converse has no tool_choice 'none'", param="tool_choice")
    tools: list[dict[str, Any]] = []
    for tool in request.tools:
        spec: dict[str, Any] = {"name": tool.name, "inputSchema": {"json": dict(tool.parameters)}}
        if tool.description:
            spec["description"] = tool.description
        if tool.strict:
            spec["strict"] = True
        tools.append({"toolSpec": spec})
        if tool.cache_control:
            tools.append(dict(_CACHE_POINT))
    config: dict[str, Any] = {"tools": tools}
    if choice.mode == "required":
        config["toolChoice"] = {"any": {}}
    elif choice.mode == "tool":
        config["toolChoice"] = {"tool": {"name": choice.name or ""}}
    else:
        config["toolChoice"] = {"auto": {}}
    return config


def _render_parts(parts: tuple[Part, ...], drop_params: bool, param: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        out.extend(_render_part(part, drop_params=drop_params, param=f"{param}[{j}]"))
    return out


def _render_part(part: Part, *, drop_params: bool, param: str = "content") -> list[dict[str, Any]]:
    if isinstance(part, TextPart):
        # Bedrock rejects blank text blocks; an empty part carries nothing anyway.
        block = [{"text": part.text}] if part.text else []
        return [*block, dict(_CACHE_POINT)] if part.cache_control else block
    if isinstance(part, ImagePart):
        image = _render_image(part, drop_params, param)
        return [image] if image is not None else []
    if isinstance(part, DocumentPart):
        document = _render_document(part, drop_params, param)
        return [document] if document is not None else []
    if isinstance(part, ToolCallPart):
        return [{"toolUse": {"toolUseId": part.id, "name": part.name, "input": tool_input(part.arguments)}}]
    if isinstance(part, ToolResultPart):
        content = _render_parts(part.content, drop_params, f"{param}.content")
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


def tool_input(arguments: str) -> Any:
    """Tool-call arguments as the JSON object Converse wants; unparsable text becomes ``{}``."""
    try:
        value = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


# ---- upstream side: parse responses and errors -------------------------------------------------


def parse_response(body: bytes) -> ChatResponse:
    try:
        data = _obj(orjson.loads(body), "body")
        message = _obj(_obj(data.get("output"), "output").get("message"), "output.message")
        parts = _parse_content(message.get("content", []), "output.message.content", strict=False)
    except (orjson.JSONDecodeError, InvalidRequest) as exc:
        raise UpstreamError(f"malformed Bedrock Converse response: {exc}", provider=PROVIDER) from exc
    extra = data.get("additionalModelResponseFields")
    stop_sequence = extra.get("stop_sequence") if isinstance(extra, dict) else None
    return ChatResponse(
        id="",
        model="",
        parts=parts,
        finish_reason=finish_from_bedrock(data.get("stopReason")),
        usage=parse_usage(data.get("usage")),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
    )


def stream_decoder() -> BedrockStreamDecoder:
    return BedrockStreamDecoder()


def parse_error(status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
    return error_from_response(status, body, headers)
