"""OpenAI chat completions request bodies, both ways: client bodies (and LiteLLM's extensions of
them) → ``ChatRequest``, and ``ChatRequest`` → the body an OpenAI-compatible upstream takes.
Messages and their parts are in ``content``. Imports ``canonical`` and ``errors`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from tollgate.canonical import (
    AUTO,
    ChatRequest,
    Reasoning,
    ResponseFormat,
    RouteHints,
    Tool,
    ToolChoice,
)
from tollgate.dialects.bounds import load_json, token_count
from tollgate.dialects.cache_controls import parse_cache_controls
from tollgate.dialects.conversation_fields import history_switches, prompt_variables
from tollgate.dialects.guardrail_choice import parse_guardrail_choice
from tollgate.dialects.openai.content import (
    bad,
    opt_bool,
    opt_float,
    opt_int,
    opt_str,
    parse_messages,
    render_messages,
    str_list,
)
from tollgate.errors import InvalidRequest

NAME = "openai"  # the dialect's name (``chat.name``); it tags the fields passed through
_MODELED = frozenset(
    {
        "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "max_tokens",
        "max_completion_tokens", "temperature", "top_p", "top_k", "stop", "seed", "user", "n",
        "presence_penalty", "frequency_penalty", "response_format", "reasoning_effort", "thinking",
        "stream", "stream_options", "metadata", "tags", "fallbacks", "num_retries", "priority",
        "timeout", "guardrails", "cache", "enable_history", "session_id", "promptVariables",
    }
)  # fmt: skip
# LiteLLM proxy controls that must never reach an upstream (a client-chosen key or base URL).
GATEWAY_ONLY = frozenset({"api_key", "api_base", "base_url", "mock_response", "caching", "no-log"})
Effort = Literal["minimal", "low", "medium", "high"] | None
_EFFORTS = frozenset({"minimal", "low", "medium", "high"})


# ---- field checks ------------------------------------------------------------------------------














# ---- client request: messages ------------------------------------------------------------------






















# ---- client request: options -------------------------------------------------------------------


def _parse_tools(raw: object) -> tuple[Tool, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise bad("tools", "a list")
    tools = []
    for i, item in enumerate(raw):
        fn = item.get("function") if isinstance(item, dict) else None
        if not isinstance(fn, dict) or item.get("type", "function") != "function":
            raise bad(f"tools[{i}]", 'an object with type "function" and a function object')
        fn_name = fn.get("name")
        if not isinstance(fn_name, str) or not fn_name:
            raise bad(f"tools[{i}].function.name", "a non-empty string")
        params = fn.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise bad(f"tools[{i}].function.parameters", "a JSON schema object")
        tools.append(
            Tool(
                name=fn_name,
                description=opt_str(fn, "description", f"tools[{i}].function.description"),
                parameters=params if params is not None else {"type": "object", "properties": {}},
                strict=opt_bool(fn, "strict", f"tools[{i}].function.strict"),
            )
        )
    return tuple(tools)


def _parse_tool_choice(raw: object, parallel: object) -> ToolChoice:
    if parallel is not None and not isinstance(parallel, bool):
        raise bad("parallel_tool_calls", "a boolean")
    disable = parallel is False
    if raw is None or raw == "auto":
        return ToolChoice(disable_parallel=disable) if disable else AUTO
    if raw in ("none", "required"):
        return ToolChoice("none" if raw == "none" else "required", disable_parallel=disable)
    fn = raw.get("function") if isinstance(raw, dict) and raw.get("type") == "function" else None
    fn_name = fn.get("name") if isinstance(fn, dict) else None
    if isinstance(fn_name, str) and fn_name:
        return ToolChoice("tool", fn_name, disable_parallel=disable)
    raise bad("tool_choice", '"auto", "none", "required" or {"type": "function", "function": {"name"}}')


def _parse_response_format(raw: object) -> ResponseFormat | None:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text" or kind == "json_object":
        return ResponseFormat(kind)
    if kind == "json_schema" and isinstance(raw, dict):
        spec = raw.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise bad("response_format.json_schema", "an object with a schema")
        return ResponseFormat(
            "json_schema",
            schema=spec.get("schema"),
            name=opt_str(spec, "name", "response_format.json_schema.name"),
            strict=opt_bool(spec, "strict", "response_format.json_schema.strict"),
        )
    raise bad("response_format.type", '"text", "json_object" or "json_schema"')


def _parse_reasoning_options(body: Mapping[str, Any], passthrough: dict[str, Any]) -> Reasoning | None:
    effort = body.get("reasoning_effort")
    if effort is not None and not isinstance(effort, str):
        raise bad("reasoning_effort", "a string")
    if effort is not None and effort not in _EFFORTS:
        passthrough["reasoning_effort"] = effort  # a newer level ("none", "xhigh"): forward as is
        effort = None
    budget = None
    thinking = body.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict):
            raise bad("thinking", "an object")
        if thinking.get("type") == "enabled":
            budget = token_count(thinking.get("budget_tokens"), "thinking.budget_tokens")
    if effort is None and budget is None:
        return None
    return Reasoning(budget_tokens=budget, effort=cast(Effort, effort))


def _parse_route(body: Mapping[str, Any]) -> tuple[RouteHints, tuple[str, ...], Mapping[str, Any]]:
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise bad("metadata", "an object")
    tags: list[str] = []
    for raw, param in ((body.get("tags"), "tags"), ((metadata or {}).get("tags"), "metadata.tags")):
        if raw is not None and not isinstance(raw, list):
            raise bad(param, "a list of strings")
        tags.extend(t for t in str_list(raw, param) if t not in tags)
    fallbacks = body.get("fallbacks")
    if fallbacks is not None:
        if not isinstance(fallbacks, list):
            raise bad("fallbacks", "a list of model names")
        names = [f.get("model") if isinstance(f, dict) else f for f in fallbacks]
        fallbacks = tuple(str_list(names, "fallbacks"))
    hints = RouteHints(
        fallbacks=fallbacks,
        num_retries=opt_int(body, "num_retries", 0),
        priority=opt_int(body, "priority"),
        timeout=opt_float(body, "timeout", 0),
    )
    return hints, tuple(tags), metadata or {}


def parse_request(body: bytes, *, model: str | None = None) -> ChatRequest:
    data = load_json(body)
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model_name = data.get("model", model)
    if not isinstance(model_name, str) or not model_name:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    if "messages" not in data:
        raise InvalidRequest("'messages' is required.", param="messages")
    system, messages = parse_messages(data["messages"])
    passthrough = {k: v for k, v in data.items() if k not in _MODELED and k not in GATEWAY_ONLY}
    stream_options = data.get("stream_options")
    stream_options = {} if stream_options is None else stream_options
    if not isinstance(stream_options, dict):
        raise bad("stream_options", "an object")
    max_tokens = token_count(data.get("max_completion_tokens"), "max_completion_tokens")
    if max_tokens is None:
        max_tokens = token_count(data.get("max_tokens"), "max_tokens")
    hints, tags, metadata = _parse_route(data)
    enable_history, session_id = history_switches(data.get("enable_history"), data.get("session_id"))
    return ChatRequest(
        model=model_name,
        messages=messages,
        system=system,
        tools=_parse_tools(data.get("tools")),
        tool_choice=_parse_tool_choice(data.get("tool_choice"), data.get("parallel_tool_calls")),
        max_tokens=max_tokens,
        temperature=opt_float(data, "temperature", 0),
        top_p=opt_float(data, "top_p", 0),
        top_k=opt_int(data, "top_k", 0),
        stop=str_list(data.get("stop"), "stop"),
        seed=opt_int(data, "seed"),
        user=opt_str(data, "user", "user"),
        n=opt_int(data, "n", 1),
        presence_penalty=opt_float(data, "presence_penalty"),
        frequency_penalty=opt_float(data, "frequency_penalty"),
        response_format=_parse_response_format(data.get("response_format")),
        reasoning=_parse_reasoning_options(data, passthrough),
        stream=bool(opt_bool(data, "stream", "stream")),
        include_usage=bool(opt_bool(stream_options, "include_usage", "stream_options.include_usage")),
        hints=hints,
        guardrails=parse_guardrail_choice(data.get("guardrails"), metadata.get("guardrails")),
        cache=parse_cache_controls(data.get("cache")),
        tags=tags,
        metadata=metadata,
        passthrough=passthrough,
        passthrough_dialect=NAME if passthrough else None,
        enable_history=enable_history,
        session_id=session_id,
        prompt_variables=prompt_variables(data.get("promptVariables")),
    )








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
    body: dict[str, object] = {"model": upstream_model, "messages": render_messages(request)}
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
    if request.passthrough_dialect == NAME:
        for key, value in request.passthrough.items():
            body.setdefault(key, value)
    return body


