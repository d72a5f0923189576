"""Anthropic Messages dialect: requests both ways (responses and errors: test_anthropic_responses.py)."""

from __future__ import annotations

import base64
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
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from tollgate.dialects import ChatDialect
from tollgate.dialects.anthropic import messages as dialect
from tollgate.errors import (
    InvalidRequest,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"
SERVER_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def _body(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "model": "claude-x",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def test_module_satisfies_the_dialect_protocol() -> None:
    as_protocol: ChatDialect = dialect
    assert as_protocol.name == "anthropic"


# ---- parse_request -----------------------------------------------------------------------------


def test_parse_full_request_fixture() -> None:
    req = dialect.parse_request(_fixture("request_full.json"))
    assert req.model == "claude-sonnet-4-5-20250929"
    assert req.max_tokens == 2048
    assert req.system == (
        TextPart("You are a weather assistant."),
        TextPart("Long reference material.", cache_control=True),
    )
    user, assistant, results = req.messages
    assert user == Message(
        "user",
        (
            TextPart("What is in this picture, and what is the weather in Paris?"),
            ImagePart(media_type="image/jpeg", data="/9j/4AAQSkZJRg=="),
            ImagePart(url="https://example.com/cat.png"),
            DocumentPart("application/pdf", "JVBERi0xLjQ=", "report.pdf"),
        ),
    )
    assert assistant.parts == (
        ReasoningPart(
            "The user wants the weather; call the tool.",
            signature="EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
        ),
        ReasoningPart(redacted="EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP"),
        TextPart("Let me check the weather."),
        ToolCallPart(
            "toolu_01A09q90qw90lq917835lq9", "get_weather", '{"location":"Paris, France","unit":"celsius"}'
        ),
    )
    assert results.parts == (
        ToolResultPart("toolu_01A09q90qw90lq917835lq9", (TextPart("15 degrees, cloudy"),)),
        TextPart("Thanks!", cache_control=True),
    )
    assert len(req.tools) == 1
    tool = req.tools[0]
    assert (tool.name, tool.description, tool.cache_control) == (
        "get_weather",
        "Get the current weather in a given location",
        True,
    )
    assert tool.parameters["required"] == ["location"]
    assert req.tool_choice == ToolChoice("auto", disable_parallel=True)
    assert req.reasoning == Reasoning(budget_tokens=1024)
    assert req.stop == ("\n\nHuman:",)
    assert (req.temperature, req.top_k, req.top_p) == (1.0, 40, None)
    assert req.user == "user-1234"
    assert req.stream is True
    assert req.passthrough == {"service_tier": "auto", "_server_tools": [SERVER_TOOL]}
    assert req.passthrough_dialect == "anthropic"


def test_parse_minimal_request_and_path_model() -> None:
    req = dialect.parse_request(_body(model=...), model="from-path")
    assert req == ChatRequest(
        model="from-path", messages=(Message("user", (TextPart("hi"),)),), max_tokens=100
    )


def test_parse_tool_choice_variants_and_system_string() -> None:
    def choice(raw: dict[str, Any]) -> ToolChoice:
        return dialect.parse_request(_body(tool_choice=raw)).tool_choice

    assert choice({"type": "any"}) == ToolChoice("required")
    assert choice({"type": "none"}) == ToolChoice("none")
    assert choice({"type": "tool", "name": "f"}) == ToolChoice("tool", "f")
    assert dialect.parse_request(_body(system="Be brief.")).system == (TextPart("Be brief."),)
    assert dialect.parse_request(_body(system="")).system == ()


def test_parse_tool_result_variants_text_document_and_thinking_modes() -> None:
    content = [
        {"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": True},
        {"type": "tool_result", "tool_use_id": "t2"},
        {
            "type": "tool_result",
            "tool_use_id": "t3",
            "content": [{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}],
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello"}},
    ]
    req = dialect.parse_request(
        _body(messages=[{"role": "user", "content": content}], thinking={"type": "disabled"})
    )
    assert req.messages[0].parts == (
        ToolResultPart("t1", (TextPart("boom"),), is_error=True),
        ToolResultPart("t2"),
        ToolResultPart("t3", (ImagePart(url="https://x/y.png"),)),
        DocumentPart("text/plain", base64.b64encode(b"hello").decode()),
    )
    assert req.reasoning is None
    adaptive = dialect.parse_request(_body(thinking={"type": "adaptive"}))
    assert adaptive.reasoning is None
    assert adaptive.passthrough == {"thinking": {"type": "adaptive"}}


def test_cache_breakpoint_on_a_tool_result_moves_to_its_last_text() -> None:
    cached = {"type": "ephemeral"}
    content = [
        {"type": "tool_result", "tool_use_id": "t1", "content": "out", "cache_control": cached},
        {
            "type": "tool_result",
            "tool_use_id": "t2",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            "cache_control": cached,
        },
    ]
    req = dialect.parse_request(_body(messages=[{"role": "user", "content": content}]))
    assert req.messages[0].parts == (
        ToolResultPart("t1", (TextPart("out", cache_control=True),)),
        ToolResultPart("t2", (TextPart("a"), TextPart("b", cache_control=True))),
    )
    body = dialect.render_request(req, "m", drop_params=False)
    assert body["messages"][0]["content"][0] == {  # type: ignore[index]
        "type": "tool_result",
        "tool_use_id": "t1",
        "content": [{"type": "text", "text": "out", "cache_control": cached}],
    }


def test_parse_litellm_routing_extensions_are_not_passed_through() -> None:
    req = dialect.parse_request(_body(fallbacks=["b"], num_retries=2, timeout=30, tags=["team-a"]))
    assert req.hints.fallbacks == ("b",)
    assert (req.hints.num_retries, req.hints.timeout) == (2, 30.0)
    assert req.tags == ("team-a",)
    assert req.passthrough == {}
    assert req.passthrough_dialect is None


def _msg(*blocks: Any, role: str = "user") -> list[dict[str, Any]]:
    return [{"role": role, "content": list(blocks)}]


INVALID_BODIES: list[tuple[bytes, str | None]] = [
    (b"{not json", None),
    (b"[1, 2]", "body"),
    (_body(model=...), "model"),
    (_body(model=3), "model"),
    (_body(max_tokens=...), "max_tokens"),
    (_body(max_tokens="10"), "max_tokens"),
    (_body(max_tokens=True), "max_tokens"),
    (_body(max_tokens=0), "max_tokens"),
    (_body(messages=...), "messages"),
    (_body(messages={}), "messages"),
    (_body(messages=[]), "messages"),
    (_body(messages=["hi"]), "messages[0]"),
    (_body(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
    (_body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    (_body(messages=[{"role": "user", "content": ["x"]}]), "messages[0].content[0]"),
    (_body(messages=_msg({"type": "video"})), "messages[0].content[0].type"),
    (_body(messages=_msg({"type": "text", "text": 1})), "messages[0].content[0].text"),
    (_body(messages=_msg({"type": "image"})), "messages[0].content[0].source"),
    (
        _body(messages=_msg({"type": "image", "source": {"type": "file", "file_id": "f"}})),
        "messages[0].content[0].source.type",
    ),
    (
        _body(messages=_msg({"type": "image", "source": {"type": "base64", "data": "x"}})),
        "messages[0].content[0].source.media_type",
    ),
    (_body(messages=_msg({"type": "image", "source": {"type": "url"}})), "messages[0].content[0].source.url"),
    (
        _body(messages=_msg({"type": "document", "source": {"type": "url", "url": "u"}})),
        "messages[0].content[0].source.type",
    ),
    (
        _body(
            messages=_msg({"type": "document", "source": {"type": "base64", "media_type": "application/pdf"}})
        ),
        "messages[0].content[0].source.data",
    ),
    (
        _body(messages=_msg({"type": "tool_use", "id": "t", "name": "f", "input": "{}"}, role="assistant")),
        "messages[0].content[0].input",
    ),
    (
        _body(messages=_msg({"type": "tool_use", "name": "f", "input": {}}, role="assistant")),
        "messages[0].content[0].id",
    ),
    (
        _body(messages=_msg({"type": "tool_use", "id": "t", "input": {}}, role="assistant")),
        "messages[0].content[0].name",
    ),
    (_body(messages=_msg({"type": "tool_result", "content": "x"})), "messages[0].content[0].tool_use_id"),
    (
        _body(messages=_msg({"type": "tool_result", "tool_use_id": "t", "content": 3})),
        "messages[0].content[0].content",
    ),
    (
        _body(
            messages=_msg(
                {
                    "type": "tool_result",
                    "tool_use_id": "t",
                    "content": [{"type": "tool_use", "id": "a", "name": "b", "input": {}}],
                }
            )
        ),
        "messages[0].content[0].content[0]",
    ),
    (
        _body(messages=_msg({"type": "thinking", "signature": "s"}, role="assistant")),
        "messages[0].content[0].thinking",
    ),
    (_body(messages=_msg({"type": "redacted_thinking"}, role="assistant")), "messages[0].content[0].data"),
    (_body(system=5), "system"),
    (_body(system=[{"type": "image"}]), "system[0].type"),
    (_body(system=["x"]), "system[0]"),
    (_body(tools={}), "tools"),
    (_body(tools=["f"]), "tools[0]"),
    (_body(tools=[{"input_schema": {}}]), "tools[0].name"),
    (_body(tools=[{"name": "f"}]), "tools[0].input_schema"),
    (_body(tools=[{"name": "f", "input_schema": {}, "description": 1}]), "tools[0].description"),
    (_body(tool_choice="auto"), "tool_choice"),
    (_body(tool_choice={"type": "maybe"}), "tool_choice.type"),
    (_body(tool_choice={"type": "tool"}), "tool_choice.name"),
    (_body(stop_sequences="stop"), "stop_sequences"),
    (_body(stop_sequences=[1]), "stop_sequences"),
    (_body(temperature="hot"), "temperature"),
    (_body(top_p=True), "top_p"),
    (_body(top_k=1.5), "top_k"),
    (_body(thinking="on"), "thinking"),
    (_body(thinking={"type": "enabled"}), "thinking.budget_tokens"),
    (_body(metadata="x"), "metadata"),
    (_body(metadata={"user_id": 7}), "metadata.user_id"),
    (_body(fallbacks="b"), "fallbacks"),
    (_body(num_retries="2"), "num_retries"),
    (_body(timeout="slow"), "timeout"),
    (_body(tags=[1]), "tags"),
    (_body(stream="true"), "stream"),
]


@pytest.mark.parametrize(("body", "param"), INVALID_BODIES)
def test_parse_request_rejects_bad_input_naming_the_field(body: bytes, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        dialect.parse_request(body)
    assert type(info.value) is InvalidRequest
    assert info.value.param == param
    assert info.value.status == 400
    if param is not None:
        assert param.split("[")[0].split(".")[0] in info.value.message


# ---- render_request ----------------------------------------------------------------------------


def test_render_request_round_trips_the_fixture_exactly() -> None:
    original = orjson.loads(_fixture("request_full.json"))
    req = dialect.parse_request(_fixture("request_full.json"))
    rendered = dialect.render_request(req, "claude-sonnet-4-5-20250929", drop_params=False)
    assert rendered == original
    assert dialect.parse_request(orjson.dumps(rendered)) == req


def test_render_request_defaults_and_plain_system_string() -> None:
    req = ChatRequest(
        model="alias",
        messages=(Message("user", (TextPart("hi"),)),),
        system=(TextPart("Be brief."),),
        stop=("END",),
        user="u1",
        top_p=0.5,
    )
    assert dialect.render_request(req, "claude-up", drop_params=False) == {
        "model": "claude-up",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "system": "Be brief.",
        "stop_sequences": ["END"],
        "top_p": 0.5,
        "metadata": {"user_id": "u1"},
    }


def test_render_request_from_foreign_canonical_parts() -> None:
    req = ChatRequest(
        model="m",
        messages=(
            Message("user", (ImagePart(url="https://x/a.png"), DocumentPart("text/plain", "aGk=", "n.txt"))),
            Message(
                "assistant",
                (
                    TextPart(""),  # OpenAI clients send "" next to tool calls
                    ReasoningPart("unsigned thoughts"),  # OpenAI reasoning cannot be replayed
                    ToolCallPart("call_1", "f", "{broken"),
                    ToolCallPart("call_2", "g", ""),
                ),
            ),
            Message("user", (ToolResultPart("call_1", (TextPart(""),), is_error=True),)),
        ),
        tools=(Tool("f", parameters={"type": "object"}, strict=True),),
        tool_choice=ToolChoice("required"),
        passthrough={"service_tier": "auto", "_server_tools": [SERVER_TOOL]},
        passthrough_dialect="openai",
    )
    body = dialect.render_request(req, "m", drop_params=False)
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}},
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "hi"},
                    "title": "n.txt",
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "f", "input": {}},
                {"type": "tool_use", "id": "call_2", "name": "g", "input": {}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "is_error": True}]},
    ]
    assert body["tools"] == [{"name": "f", "input_schema": {"type": "object"}, "strict": True}]
    assert body["tool_choice"] == {"type": "any"}
    assert "service_tier" not in body  # passthrough of another dialect is never forwarded


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice(), None),
        (ToolChoice("auto", disable_parallel=True), {"type": "auto", "disable_parallel_tool_use": True}),
        (ToolChoice("required", disable_parallel=True), {"type": "any", "disable_parallel_tool_use": True}),
        (ToolChoice("none"), {"type": "none"}),
        (ToolChoice("tool", "f"), {"type": "tool", "name": "f"}),
    ],
)
def test_render_tool_choice(choice: ToolChoice, expected: dict[str, Any] | None) -> None:
    req = ChatRequest(model="m", messages=(), tools=(Tool("f"),), tool_choice=choice)
    assert dialect.render_request(req, "m", drop_params=False).get("tool_choice") == expected


def test_tool_choice_is_left_out_without_tools() -> None:
    req = ChatRequest(model="m", messages=(), tool_choice=ToolChoice("none"))
    body = dialect.render_request(req, "m", drop_params=False)
    assert "tool_choice" not in body
    assert "tools" not in body


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "expected_thinking", "expected_max"),
    [
        (Reasoning(budget_tokens=2000), 8000, {"type": "enabled", "budget_tokens": 2000}, 8000),
        (Reasoning(budget_tokens=8000), None, {"type": "enabled", "budget_tokens": 8000}, 12096),
        (Reasoning(effort="low"), None, {"type": "enabled", "budget_tokens": 1024}, 5120),
        (Reasoning(effort="medium"), None, {"type": "enabled", "budget_tokens": 4096}, 8192),
        (Reasoning(effort="high"), None, {"type": "enabled", "budget_tokens": 16384}, 20480),
        (Reasoning(effort="high"), 5000, {"type": "enabled", "budget_tokens": 4999}, 5000),
        (Reasoning(effort="medium"), 1000, None, 1000),
        (Reasoning(), 100, None, 100),
    ],
)
def test_render_thinking(
    reasoning: Reasoning, max_tokens: int | None, expected_thinking: dict[str, Any] | None, expected_max: int
) -> None:
    req = ChatRequest(model="m", messages=(), reasoning=reasoning, max_tokens=max_tokens)
    body = dialect.render_request(req, "m", drop_params=False)
    assert body.get("thinking") == expected_thinking
    assert body["max_tokens"] == expected_max


UNSUPPORTED: list[tuple[dict[str, Any], str]] = [
    ({"response_format": ResponseFormat("json_object")}, "response_format"),
    ({"response_format": ResponseFormat("json_schema", {"type": "object"}, "x")}, "response_format"),
    ({"seed": 7}, "seed"),
    ({"n": 2}, "n"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"frequency_penalty": -1.0}, "frequency_penalty"),
]


@pytest.mark.parametrize(("fields", "param"), UNSUPPORTED)
def test_render_request_refuses_what_anthropic_cannot_carry(fields: dict[str, Any], param: str) -> None:
    req = ChatRequest(model="m", messages=(), **fields)
    with pytest.raises(InvalidRequest) as info:
        dialect.render_request(req, "m", drop_params=False)
    assert info.value.param == param
    dropped = dialect.render_request(req, "m", drop_params=True)
    assert set(dropped) == {"model", "max_tokens", "messages"}


def test_harmless_openai_defaults_are_accepted() -> None:
    req = ChatRequest(
        model="m",
        messages=(),
        n=1,
        presence_penalty=0.0,
        frequency_penalty=0.0,
        response_format=ResponseFormat(),
    )
    assert set(dialect.render_request(req, "m", drop_params=False)) == {"model", "max_tokens", "messages"}
