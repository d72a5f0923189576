"""OpenAI chat dialect: request parsing and rendering (responses and errors: test_openai_responses.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest

from tollgate.canonical import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
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
from tollgate.dialects.openai import chat as openai_chat
from tollgate.errors import (
    InvalidRequest,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai"


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _body(**fields: Any) -> bytes:
    base: dict[str, Any] = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    base.update(fields)
    return orjson.dumps(base)


# ---- parse_request -----------------------------------------------------------------------------


def test_parse_full_request_fixture() -> None:
    req = openai_chat.parse_request(_fixture("request_full.json"))
    assert req.model == "gpt-4o"
    assert req.system == (TextPart("You are terse."), TextPart("Answer in English."))
    user, assistant, tool_results, last = req.messages
    assert user == Message(
        "user",
        (
            TextPart("What is in this image, and the weather in Paris?"),
            ImagePart(media_type="image/jpeg", data="/9j/4AAQSkZJRg==", detail="high"),
            ImagePart(url="https://example.com/cat.png"),
            DocumentPart(media_type="application/pdf", data="JVBERi0xLjQ=", name="report.pdf"),
        ),
        name="alice",
    )
    assert assistant == Message(
        "assistant",
        (
            ReasoningPart("Need the weather tool."),
            ToolCallPart("call_1", "get_weather", '{"city":"Paris"}'),
            ToolCallPart("call_2", "get_time", '{"tz":"CET"}'),
        ),
    )
    assert tool_results == Message(
        "user",
        (
            ToolResultPart("call_1", (TextPart("18C, cloudy"),)),
            ToolResultPart("call_2", (TextPart("14:05"),)),
        ),
    )
    assert last == Message("user", (TextPart("Thanks. Summarise."),))
    assert req.tools == (
        Tool(
            "get_weather",
            "Current weather",
            {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            strict=True,
        ),
        Tool("get_time", None, {"type": "object", "properties": {"tz": {"type": "string"}}}),
    )
    assert req.tool_choice == ToolChoice("tool", "get_weather", disable_parallel=True)
    assert (req.max_tokens, req.temperature, req.top_p, req.top_k) == (512, 0.2, 0.9, None)
    assert req.stop == ("END", "STOP")
    assert (req.seed, req.user, req.n) == (7, "user-42", 1)
    assert (req.presence_penalty, req.frequency_penalty) == (0.5, -0.5)
    assert req.response_format == ResponseFormat(
        "json_schema", {"type": "object", "properties": {"text": {"type": "string"}}}, "answer", True
    )
    assert req.reasoning == Reasoning(effort="low")
    assert req.stream is True and req.include_usage is True
    assert req.hints == RouteHints(("gpt-4o-mini", "claude-sonnet"), 2, 1, 30.0)
    assert req.tags == ("prod", "team-a", "batch")
    assert req.metadata == {"tags": ["team-a", "batch"], "trace_id": "t-1"}
    assert req.passthrough == {"logprobs": True, "service_tier": "flex"}
    assert req.passthrough_dialect == "openai"


def test_parse_minimal_request_defaults() -> None:
    req = openai_chat.parse_request(_body())
    assert req == ChatRequest(model="gpt-4o", messages=(Message("user", (TextPart("hi"),)),))
    assert req.passthrough_dialect is None


def test_tool_messages_merge_and_following_user_stays_separate() -> None:
    body = _body(
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "g", "arguments": {"x": 1}}},
            ]},
            {"role": "tool", "tool_call_id": "a", "content": "1"},
            {"role": "tool", "tool_call_id": "b", "content": "2"},
            {"role": "user", "content": "and?"},
        ]
    )  # fmt: skip
    req = openai_chat.parse_request(body)
    assert [m.role for m in req.messages] == ["user", "assistant", "user", "user"]
    assert req.messages[1].parts == (ToolCallPart("a", "f", "{}"), ToolCallPart("b", "g", '{"x":1}'))
    assert req.messages[2].parts == (
        ToolResultPart("a", (TextPart("1"),)),
        ToolResultPart("b", (TextPart("2"),)),
    )
    assert req.messages[3].parts == (TextPart("and?"),)


def test_thinking_extension_and_litellm_thinking_blocks() -> None:
    body = _body(
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "content": "a",
                "thinking_blocks": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "opaque"},
                ],
            },
        ],
    )
    req = openai_chat.parse_request(body)
    assert req.reasoning == Reasoning(budget_tokens=2048)
    assert req.messages[1].parts == (
        ReasoningPart("hmm", "sig"),
        ReasoningPart(redacted="opaque"),
        TextPart("a"),
    )


def test_parse_tool_choice_strings_and_parallel() -> None:
    assert openai_chat.parse_request(_body(tool_choice="required")).tool_choice == ToolChoice("required")
    assert openai_chat.parse_request(_body(tool_choice="none")).tool_choice == ToolChoice("none")
    assert openai_chat.parse_request(_body(parallel_tool_calls=False)).tool_choice == ToolChoice(
        disable_parallel=True
    )


def test_unknown_reasoning_effort_and_gateway_only_fields() -> None:
    req = openai_chat.parse_request(_body(reasoning_effort="xhigh", api_key="sk-x", api_base="http://evil"))
    assert req.reasoning is None
    assert req.passthrough == {"reasoning_effort": "xhigh"}


def test_model_keyword_fills_missing_model() -> None:
    body = orjson.dumps({"messages": [{"role": "user", "content": "x"}]})
    assert openai_chat.parse_request(body, model="from-path").model == "from-path"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (orjson.dumps({"messages": []}), "model"),
        (_body(model=""), "model"),
        (orjson.dumps({"model": "m"}), "messages"),
        (_body(messages="hi"), "messages"),
        (_body(messages=["hi"]), "messages[0]"),
        (_body(messages=[{"role": "wizard", "content": "x"}]), "messages[0].role"),
        (_body(messages=[{"role": "user"}]), "messages[0].content"),
        (_body(messages=[{"role": "user", "content": [{"type": "input_audio"}]}]), "messages[0].content[0]"),
        (_body(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages[0].content[0].text"),
        (
            _body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]),
            "messages[0].content[0]",
        ),
        (_body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": "data:x,y"}]}]),
         "messages[0].content[0].image_url.url"),
        (_body(messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": "f"}}]}]),
         "messages[0].content[0]"),
        (_body(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id"),
        (_body(messages=[{"role": "assistant", "tool_calls": {}}]), "messages[0].tool_calls"),
        (_body(messages=[{"role": "assistant", "tool_calls": [{"id": "a"}]}]),
         "messages[0].tool_calls[0].function"),
        (_body(temperature="hot"), "temperature"),
        (_body(temperature=True), "temperature"),
        (_body(max_tokens=-1), "max_tokens"),
        (_body(max_completion_tokens=0), "max_completion_tokens"),
        (_body(top_k=1.5), "top_k"),
        (_body(seed="1"), "seed"),
        (_body(n=0), "n"),
        (_body(stop=[1]), "stop"),
        (_body(user=5), "user"),
        (_body(stream="yes"), "stream"),
        (_body(stream_options=[]), "stream_options"),
        (_body(stream_options={"include_usage": "y"}), "stream_options.include_usage"),
        (_body(tools={}), "tools"),
        (_body(tools=[{"type": "custom", "custom": {}}]), "tools[0]"),
        (_body(tools=[{"type": "function", "function": {}}]), "tools[0].function.name"),
        (_body(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
         "tools[0].function.parameters"),
        (_body(tool_choice="sometimes"), "tool_choice"),
        (_body(tool_choice={"type": "function", "function": {}}), "tool_choice"),
        (_body(parallel_tool_calls="no"), "parallel_tool_calls"),
        (_body(response_format={"type": "yaml"}), "response_format.type"),
        (_body(response_format={"type": "json_schema"}), "response_format.json_schema"),
        (_body(reasoning_effort=3), "reasoning_effort"),
        (_body(thinking={"type": "enabled", "budget_tokens": "many"}), "thinking.budget_tokens"),
        (_body(metadata=[]), "metadata"),
        (_body(metadata={"tags": "a"}), "metadata.tags"),
        (_body(tags=[1]), "tags"),
        (_body(fallbacks="gpt-4o-mini"), "fallbacks"),
        (_body(num_retries=-1), "num_retries"),
        (_body(timeout="soon"), "timeout"),
    ],
)  # fmt: skip
def test_invalid_requests_name_the_param(body: bytes, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        openai_chat.parse_request(body)
    assert type(info.value) is InvalidRequest
    assert info.value.status == 400
    assert info.value.param == param


# ---- render_request ----------------------------------------------------------------------------


def test_round_trip_openai_to_openai_preserves_every_field() -> None:
    original = openai_chat.parse_request(_fixture("request_full.json"))
    rendered = openai_chat.render_request(original, "gpt-4o-2024-08-06", drop_params=False)
    again = openai_chat.parse_request(orjson.dumps(rendered))
    # Gateway-only fields (routing hints, tags, metadata) are not forwarded upstream, and OpenAI
    # takes no reasoning back in assistant turns.
    without_reasoning = tuple(
        Message(m.role, tuple(p for p in m.parts if not isinstance(p, ReasoningPart)), m.name)
        for m in original.messages
    )
    expected = dataclasses.replace(
        original,
        model="gpt-4o-2024-08-06",
        messages=without_reasoning,
        hints=RouteHints(),
        tags=(),
        metadata={},
    )
    assert again == expected
    assert without_reasoning != original.messages
    assert rendered["stream_options"] == {"include_usage": True}
    assert "metadata" not in rendered and "fallbacks" not in rendered


def test_render_request_message_shapes() -> None:
    request = ChatRequest(
        model="alias",
        system=(TextPart("sys", cache_control=True),),
        messages=(
            Message("user", (TextPart("look"), ImagePart(media_type="image/png", data="AAA"))),
            Message(
                "assistant",
                (ReasoningPart("think", "sig"), TextPart("calling"), ToolCallPart("t1", "f", '{"a":1}')),
            ),
            Message(
                "user",
                (
                    ToolResultPart("t1", (TextPart("r1"), ImagePart(url="https://x/y.png"), TextPart("r2"))),
                    TextPart("next"),
                ),
            ),
        ),
        stream=True,
        include_usage=False,
    )
    body = openai_chat.render_request(request, "gpt-4o", drop_params=False)
    assert body == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                ],
            },
            {
                "role": "assistant",
                "content": "calling",
                "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "r1r2"},
            {"role": "user", "content": "next"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_render_request_tool_only_assistant_has_null_content() -> None:
    request = ChatRequest(
        model="m",
        messages=(Message("assistant", (ToolCallPart("c", "f"),)), Message("assistant", ())),
    )
    messages = openai_chat.render_request(request, "m", drop_params=False)["messages"]
    assert messages == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]},
        {"role": "assistant", "content": ""},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "param"),
    [({"top_k": 40}, "top_k"), ({"reasoning": Reasoning(budget_tokens=1024)}, "thinking.budget_tokens")],
)
def test_unsupported_params_raise_unless_dropped(fields: dict[str, Any], param: str) -> None:
    request = ChatRequest(model="m", messages=(Message("user", (TextPart("x"),)),), **fields)
    with pytest.raises(InvalidRequest) as info:
        openai_chat.render_request(request, "m", drop_params=False)
    assert info.value.param == param
    body = openai_chat.render_request(request, "m", drop_params=True)
    assert set(body) == {"model", "messages"}


def test_effort_is_kept_when_budget_dropped() -> None:
    request = ChatRequest(
        model="m", messages=(Message("user", (TextPart("x"),)),), reasoning=Reasoning(2048, "high")
    )
    assert openai_chat.render_request(request, "m", drop_params=True)["reasoning_effort"] == "high"


def test_passthrough_only_for_openai_origin() -> None:
    base = ChatRequest(
        model="m", messages=(Message("user", (TextPart("x"),)),), passthrough={"logprobs": True}
    )
    foreign = dataclasses.replace(base, passthrough_dialect="anthropic")
    same = dataclasses.replace(base, passthrough_dialect="openai")
    assert "logprobs" not in openai_chat.render_request(foreign, "m", drop_params=False)
    assert openai_chat.render_request(same, "m", drop_params=False)["logprobs"] is True


def test_tool_choice_omitted_without_tools() -> None:
    request = ChatRequest(
        model="m", messages=(Message("user", (TextPart("x"),)),), tool_choice=ToolChoice("none", None, True)
    )
    body = openai_chat.render_request(request, "m", drop_params=False)
    assert "tool_choice" not in body and "parallel_tool_calls" not in body


@pytest.mark.parametrize(
    ("upstream", "field"),
    [("gpt-4o", "max_tokens"), ("o3-mini", "max_completion_tokens"), ("gpt-5", "max_completion_tokens"),
     ("azure/o1", "max_completion_tokens"), ("llama-3", "max_tokens")],
)
def test_reasoning_models_get_max_completion_tokens(upstream: str, field: str) -> None:
    request = openai_chat.parse_request(
        orjson.dumps({"model": "m", "max_tokens": 7, "messages": [{"role": "user", "content": "x"}]})
    )
    body = openai_chat.render_request(request, upstream, drop_params=False)
    assert body[field] == 7
    assert {"max_tokens", "max_completion_tokens"} - {field} & set(body) == set()
