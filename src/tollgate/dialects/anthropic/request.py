"""Anthropic Messages request bodies, both ways: client bodies → ``ChatRequest``, and
``ChatRequest`` → the body the Anthropic upstream takes. Content blocks are in ``content``.
Imports only ``canonical``, ``errors`` and this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tollgate.canonical import (
    AUTO,
    NO_HINTS,
    ChatRequest,
    Message,
    Reasoning,
    RouteHints,
    TextPart,
    Tool,
    ToolChoice,
)
from tollgate.dialects.anthropic.content import (
    EPHEMERAL,
    cached,
    expect_dict,
    expect_int,
    expect_list,
    expect_number,
    expect_str,
    fail,
    input_block,
    parse_block,
    parse_text,
    text_block,
)
from tollgate.dialects.bounds import load_json, token_count
from tollgate.dialects.cache_controls import parse_cache_controls
from tollgate.dialects.conversation_fields import history_switches, prompt_variables
from tollgate.dialects.guardrail_choice import parse_guardrail_choice

NAME = "anthropic"  # the dialect's name (``messages.name``); it tags the fields passed through

# Anthropic requires max_tokens; OpenAI and Bedrock clients may leave it out.
DEFAULT_MAX_TOKENS = 4096
# OpenAI-style effort levels as Anthropic thinking budgets: 1024 is Anthropic's minimum budget,
# and each step up is four times the last, matching how the levels are usually described.
EFFORT_BUDGETS: Mapping[str, int] = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
_MIN_BUDGET = 1024

_MODELED = frozenset(
    {
        "model", "max_tokens", "messages", "system", "tools", "tool_choice", "stop_sequences",
        "temperature", "top_p", "top_k", "thinking", "metadata", "stream",
        # LiteLLM body extensions: routing wishes, never forwarded upstream.
        "fallbacks", "num_retries", "timeout", "tags", "guardrails", "cache",
        # The gateway's chat history and managed prompts (also accepted inside metadata).
        "enable_history", "session_id", "promptVariables",
    }
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Client side: request parsing
# ---------------------------------------------------------------------------------------------


def _parse_message(raw: object, param: str) -> Message:
    message = expect_dict(raw, param)
    role = message.get("role")
    if role != "user" and role != "assistant":
        raise fail(f"{param}.role: must be 'user' or 'assistant', got {role!r}", f"{param}.role")
    content = message.get("content")
    if isinstance(content, str):
        return Message(role, (TextPart(content),))
    blocks = expect_list(content, f"{param}.content")
    parts = tuple(
        parse_block(expect_dict(block, f"{param}.content[{j}]"), f"{param}.content[{j}]")
        for j, block in enumerate(blocks)
    )
    return Message(role, parts)


def _parse_system(raw: object) -> tuple[TextPart, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (TextPart(raw),) if raw else ()
    parts: list[TextPart] = []
    for i, block in enumerate(expect_list(raw, "system")):
        block = expect_dict(block, f"system[{i}]")
        if block.get("type") != "text":
            raise fail(f"system[{i}].type: system blocks must be text", f"system[{i}].type")
        parts.append(parse_text(block, f"system[{i}]"))
    return tuple(parts)


def _parse_tools(raw: object) -> tuple[tuple[Tool, ...], list[dict[str, Any]]]:
    tools: list[Tool] = []
    server_tools: list[dict[str, Any]] = []
    for i, item in enumerate(expect_list(raw, "tools")):
        param = f"tools[{i}]"
        tool = expect_dict(item, param)
        if tool.get("type") not in (None, "custom"):
            server_tools.append(tool)  # Anthropic-run tools (web search, …) only Anthropic can serve
            continue
        description = tool.get("description")
        strict = tool.get("strict")
        tools.append(
            Tool(
                name=expect_str(tool.get("name"), f"{param}.name"),
                description=None if description is None else expect_str(description, f"{param}.description"),
                parameters=expect_dict(tool.get("input_schema"), f"{param}.input_schema"),
                strict=strict if isinstance(strict, bool) else None,
                cache_control=cached(tool),
            )
        )
    return tuple(tools), server_tools


def _parse_tool_choice(raw: object) -> ToolChoice:
    if raw is None:
        return AUTO
    choice = expect_dict(raw, "tool_choice")
    disable = choice.get("disable_parallel_tool_use") is True
    match choice.get("type"):
        case "auto":
            return ToolChoice("auto", disable_parallel=disable)
        case "any":
            return ToolChoice("required", disable_parallel=disable)
        case "none":
            return ToolChoice("none")
        case "tool":
            return ToolChoice("tool", expect_str(choice.get("name"), "tool_choice.name"), disable)
    raise fail("tool_choice.type: must be auto, any, tool or none", "tool_choice.type")


def _parse_thinking_config(raw: object, passthrough: dict[str, Any]) -> Reasoning | None:
    if raw is None:
        return None
    thinking = expect_dict(raw, "thinking")
    kind = thinking.get("type")
    if kind == "enabled":
        budget = token_count(thinking.get("budget_tokens"), "thinking.budget_tokens")
        if budget is None:
            raise fail("thinking.budget_tokens: field required", "thinking.budget_tokens")
        return Reasoning(budget_tokens=budget)
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
        else tuple(expect_str(f, "fallbacks") for f in expect_list(fallbacks, "fallbacks")),
        num_retries=None if num_retries is None else expect_int(num_retries, "num_retries"),
        timeout=None if timeout is None else expect_number(timeout, "timeout"),
    )


def _optional_number(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    return None if value is None else expect_number(value, key)


def parse_request(body: bytes, *, model: str | None = None) -> ChatRequest:
    data = expect_dict(load_json(body), "body")
    model = model or expect_str(data.get("model"), "model")
    if "max_tokens" not in data:
        raise fail("max_tokens: field required", "max_tokens")
    max_tokens = token_count(data["max_tokens"], "max_tokens")
    if max_tokens is None:
        raise fail("max_tokens: field required", "max_tokens")
    raw_messages = expect_list(data.get("messages"), "messages")
    if not raw_messages:
        raise fail("messages: at least one message is required", "messages")
    messages = tuple(_parse_message(m, f"messages[{i}]") for i, m in enumerate(raw_messages))
    passthrough = {k: v for k, v in data.items() if k not in _MODELED}
    tools, server_tools = _parse_tools(data["tools"]) if data.get("tools") is not None else ((), [])
    if server_tools:
        passthrough["_server_tools"] = server_tools
    metadata = expect_dict(data["metadata"], "metadata") if data.get("metadata") is not None else {}
    user = metadata.get("user_id")
    enable_history, session_id = _history_switches(data, metadata)
    top_k = data.get("top_k")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise fail("stream: expected a boolean", "stream")
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
        top_k=None if top_k is None else expect_int(top_k, "top_k"),
        stop=tuple(
            expect_str(s, "stop_sequences")
            for s in expect_list(data.get("stop_sequences") or [], "stop_sequences")
        ),
        user=None if user is None else expect_str(user, "metadata.user_id"),
        reasoning=_parse_thinking_config(data.get("thinking"), passthrough),
        stream=stream,
        hints=_parse_hints(data),
        guardrails=parse_guardrail_choice(data.get("guardrails"), metadata.get("guardrails")),
        cache=parse_cache_controls(data.get("cache")),
        tags=() if tags is None else tuple(expect_str(t, "tags") for t in expect_list(tags, "tags")),
        passthrough=passthrough,
        passthrough_dialect=NAME if passthrough else None,
        enable_history=enable_history,
        session_id=session_id,
        prompt_variables=prompt_variables(data.get("promptVariables")),
    )


def _history_switches(data: dict[str, Any], metadata: dict[str, Any]) -> tuple[bool, str | None]:
    """The chat-history switches, top level (``extra_body``) or in ``metadata``; only
    ``metadata.user_id`` is ever rendered upstream, so neither place reaches Anthropic."""
    if "enable_history" in data or "session_id" in data:
        return history_switches(data.get("enable_history"), data.get("session_id"))
    return history_switches(metadata.get("enable_history"), metadata.get("session_id"), "metadata.")


# ---------------------------------------------------------------------------------------------
# Upstream side: requests
# ---------------------------------------------------------------------------------------------


def _render_message(message: Message) -> dict[str, Any]:
    blocks = [block for part in message.parts if (block := input_block(part)) is not None]
    return {"role": message.role, "content": blocks}


def _render_tool(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name}
    if tool.description is not None:
        out["description"] = tool.description
    out["input_schema"] = dict(tool.parameters)
    if tool.strict is not None:
        out["strict"] = tool.strict
    if tool.cache_control:
        out["cache_control"] = dict(EPHEMERAL)
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
        raise fail(f"response_format {fmt.kind} is not supported by Anthropic models", "response_format")
    if request.seed is not None:
        raise fail("seed is not supported by Anthropic models", "seed")
    if request.n is not None and request.n > 1:
        raise fail("n > 1 is not supported by Anthropic models", "n")
    # Zero penalties are what many OpenAI clients send by default; they change nothing.
    if request.presence_penalty:
        raise fail("presence_penalty is not supported by Anthropic models", "presence_penalty")
    if request.frequency_penalty:
        raise fail("frequency_penalty is not supported by Anthropic models", "frequency_penalty")


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
        body["system"] = [text_block(part) for part in request.system]
    same_dialect = request.passthrough_dialect == NAME
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
