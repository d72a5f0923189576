"""The OpenAI chat completions dialect (``/chat/completions``), both directions.

Client side: OpenAI (and LiteLLM-extended) request bodies → ``ChatRequest``; canonical answers →
``chat.completion`` bodies, chunk streams and error bodies. Upstream side: ``ChatRequest`` →
OpenAI-compatible request bodies; their answers, streams and errors → canonical. Request parsing
lives in ``openai_request`` and the stream state machines in ``openai_stream``; this module
re-exports them so that it alone satisfies ``ChatDialect``. Imports ``canonical``, ``errors`` and
``framing`` only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from tollgate.canonical import (
    ChatRequest,
    ChatResponse,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    ReasoningPart,
    ResponseFormat,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from tollgate.dialects.openai.request import NAME, parse_reasoning, parse_tool_call
from tollgate.dialects.openai.request import parse_request as parse_request
from tollgate.dialects.openai.stream import (
    FINISH_FROM_OPENAI,
    FINISH_TO_OPENAI,
    ChunkDecoder,
    ChunkEncoder,
    error_from_payload,
    error_object,
    usage_from_openai,
    usage_to_openai,
)
from tollgate.errors import GatewayError, InvalidRequest, UpstreamError

name = NAME


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
    return err.status, orjson.dumps(error_object(err)), err.response_headers()


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


# OpenAI's reasoning models refuse ``max_tokens`` and take ``max_completion_tokens`` instead.
_REASONING_MODELS = ("o1", "o3", "o4", "gpt-5")


def _max_tokens_field(upstream_model: str) -> str:
    base = upstream_model.rsplit("/", 1)[-1]
    return "max_completion_tokens" if base.startswith(_REASONING_MODELS) else "max_tokens"


def render_request(request: ChatRequest, upstream_model: str, *, drop_params: bool) -> dict[str, object]:
    body: dict[str, object] = {"model": upstream_model, "messages": _render_messages(request)}
    _render_tools(request, body)
    optional: dict[str, object | None] = {
        _max_tokens_field(upstream_model): request.max_tokens,
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
    parts: list[Part] = list(parse_reasoning(message, "message"))
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
        parts.extend(parse_tool_call(call, "tool_calls") for call in calls)
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
