"""Bedrock Converse request bodies, both ways: boto3 client bodies → ``ChatRequest`` and
``ChatRequest`` → the Converse body for the Bedrock upstream (the model id travels in the URL).
Content blocks are in ``content``. Imports ``canonical``, ``errors`` and this package only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from tollgate.canonical import (
    AUTO,
    ChatRequest,
    Message,
    Part,
    Reasoning,
    TextPart,
    Tool,
    ToolChoice,
)
from tollgate.dialects.bedrock.content import (
    CACHE_POINT,
    expect_list,
    expect_object,
    expect_str,
    mark_cache,
    parse_content,
    parse_text,
    render_parts,
)
from tollgate.dialects.bounds import load_json, token_count
from tollgate.dialects.cache_controls import parse_cache_controls
from tollgate.dialects.conversation_fields import history_switches, prompt_variables
from tollgate.errors import InvalidRequest

NAME = "bedrock"  # the dialect's name (``converse.name``); it tags the fields passed through
_PASSTHROUGH_KEYS = (
    "guardrailConfig",
    "additionalModelResponseFieldPaths",
    "performanceConfig",
    "serviceTier",
    "outputConfig",
)
# LiteLLM's reasoning_effort → Anthropic thinking budgets (Anthropic's minimum is 1024).
_EFFORT_BUDGETS: Mapping[str, int] = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}

# ---- small typed readers -----------------------------------------------------------------------


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
    data = expect_object(load_json(body), "body")
    # Optional since managed prompts: a prompt ARN as modelId brings its own messages.
    messages = tuple(
        _parse_message(m, f"messages[{i}]")
        for i, m in enumerate(expect_list(data.get("messages", []), "messages"))
    )
    system = _parse_system(data.get("system"))
    config = expect_object(data.get("inferenceConfig") or {}, "inferenceConfig")
    stop = expect_list(config.get("stopSequences") or [], "inferenceConfig.stopSequences")
    tools, tool_choice = _parse_tool_config(data.get("toolConfig"))
    top_k, reasoning, extra_fields = _parse_additional(data.get("additionalModelRequestFields"))
    enable_history, session_id = history_switches(
        extra_fields.pop("enable_history", None),
        extra_fields.pop("session_id", None),
        "additionalModelRequestFields.",
    )
    # boto3 validates the Converse shape, so its callers put the cache controls in the free-form
    # additionalModelRequestFields; a body edited by hand may carry them at the top level.
    cache = parse_cache_controls(data.get("cache"))
    if "cache" in extra_fields:
        cache = parse_cache_controls(extra_fields.pop("cache"), "additionalModelRequestFields.cache")
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
        max_tokens=token_count(config.get("maxTokens"), "inferenceConfig.maxTokens"),
        temperature=_opt_float(config.get("temperature"), "inferenceConfig.temperature"),
        top_p=_opt_float(config.get("topP"), "inferenceConfig.topP"),
        top_k=top_k,
        stop=tuple(expect_str(s, f"inferenceConfig.stopSequences[{i}]") for i, s in enumerate(stop)),
        reasoning=reasoning,
        cache=cache,
        metadata=expect_object(metadata, "requestMetadata") if metadata is not None else {},
        passthrough=passthrough,
        passthrough_dialect=NAME,
        enable_history=enable_history,
        session_id=session_id,
        prompt_variables=prompt_variables(data.get("promptVariables")),
    )


def _parse_message(value: object, param: str) -> Message:
    data = expect_object(value, param)
    role = data.get("role")
    if role != "user" and role != "assistant":
        raise InvalidRequest(f"'{param}.role' must be 'user' or 'assistant'", param=f"{param}.role")
    return Message(role, parse_content(data.get("content"), f"{param}.content", strict=True))


def _parse_system(value: object) -> tuple[TextPart, ...]:
    if value is None:
        return ()
    parts: list[Part] = []
    for i, block in enumerate(expect_list(value, "system")):
        block = expect_object(block, f"system[{i}]")
        if "cachePoint" in block:
            mark_cache(parts)
        elif "text" in block:
            parts.append(parse_text(block["text"], f"system[{i}].text"))
        else:
            raise InvalidRequest(f"unsupported system block in 'system[{i}]'", param=f"system[{i}]")
    return tuple(p for p in parts if isinstance(p, TextPart))


def _parse_tool_config(value: object) -> tuple[tuple[Tool, ...], ToolChoice]:
    if value is None:
        return (), AUTO
    config = expect_object(value, "toolConfig")
    tools: list[Tool] = []
    for i, item in enumerate(expect_list(config.get("tools", []), "toolConfig.tools")):
        param = f"toolConfig.tools[{i}]"
        item = expect_object(item, param)
        if "cachePoint" in item:
            if tools:
                tools[-1] = replace(tools[-1], cache_control=True)
            continue
        spec = expect_object(item.get("toolSpec"), f"{param}.toolSpec")
        schema = expect_object(spec.get("inputSchema"), f"{param}.toolSpec.inputSchema")
        description, strict = spec.get("description"), spec.get("strict")
        tools.append(
            Tool(
                name=expect_str(spec.get("name"), f"{param}.toolSpec.name"),
                description=description if isinstance(description, str) else None,
                parameters=expect_object(schema.get("json"), f"{param}.toolSpec.inputSchema.json"),
                strict=strict if isinstance(strict, bool) else None,
            )
        )
    return tuple(tools), _parse_tool_choice(config.get("toolChoice"))


def _parse_tool_choice(value: object) -> ToolChoice:
    if value is None:
        return AUTO
    choice = expect_object(value, "toolConfig.toolChoice")
    if "auto" in choice:
        return AUTO
    if "any" in choice:
        return ToolChoice("required")
    if "tool" in choice:
        tool = expect_object(choice["tool"], "toolConfig.toolChoice.tool")
        return ToolChoice("tool", expect_str(tool.get("name"), "toolConfig.toolChoice.tool.name"))
    raise InvalidRequest("'toolConfig.toolChoice' must be auto, any or tool", param="toolConfig.toolChoice")


def _parse_additional(value: object) -> tuple[int | None, Reasoning | None, dict[str, Any]]:
    if value is None:
        return None, None, {}
    rest = dict(expect_object(value, "additionalModelRequestFields"))
    top_k = _opt_int(rest.pop("top_k", None), "additionalModelRequestFields.top_k")
    reasoning = None
    thinking = rest.pop("thinking", None)
    if thinking is not None:
        thinking = expect_object(thinking, "additionalModelRequestFields.thinking")
        if thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens")
            reasoning = Reasoning(token_count(budget, "additionalModelRequestFields.thinking.budget_tokens"))
        elif thinking.get("type") != "disabled":
            rest["thinking"] = thinking  # adaptive or newer modes: only a Bedrock upstream knows them
    return top_k, reasoning, rest


# ---- client side: render a response ------------------------------------------------------------




# ---- upstream side: render a Converse request --------------------------------------------------


def render_request(request: ChatRequest, upstream_model: str, *, drop_params: bool) -> dict[str, object]:
    """The body for ``POST /model/{upstream_model}/converse`` (the model id goes in the URL).

    Bedrock has no ``tool_choice: none``: toolChoice is left out, and the tools too when
    ``drop_params`` is set (otherwise ``InvalidRequest``). Message order is not fixed up.
    """
    _check_unsupported(request, drop_params)
    body: dict[str, Any] = {
        "messages": [
            {"role": m.role, "content": render_parts(m.parts, drop_params, f"messages[{i}]")}
            for i, m in enumerate(request.messages)
        ]
    }
    if request.system:
        body["system"] = render_parts(request.system, drop_params, "system")
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
    passthrough = request.passthrough if request.passthrough_dialect == NAME else {}
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
            tools.append(dict(CACHE_POINT))
    config: dict[str, Any] = {"tools": tools}
    if choice.mode == "required":
        config["toolChoice"] = {"any": {}}
    elif choice.mode == "tool":
        config["toolChoice"] = {"tool": {"name": choice.name or ""}}
    else:
        config["toolChoice"] = {"auto": {}}
    return config


# ---- upstream side: parse responses and errors -------------------------------------------------




