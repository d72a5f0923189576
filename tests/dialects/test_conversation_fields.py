"""The gateway's conversation fields in every chat dialect: parsed into typed request fields,
refused with the field's name when malformed, never rendered for an upstream; and the session
id on the answers that carry it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tollgate.canonical import ChatResponse, MessageStart, MessageStop, TextPart, Usage
from tollgate.dialects.anthropic import messages as anthropic
from tollgate.dialects.bedrock import converse as bedrock
from tollgate.dialects.openai import chat as openai
from tollgate.errors import InvalidRequest

HI_OPENAI = [{"role": "user", "content": "hi"}]
HI_BEDROCK = [{"role": "user", "content": [{"text": "hi"}]}]
VARIABLES = {"topic": {"text": "fruit"}}
SWITCHES = ("enable_history", "session_id", "promptVariables")


def _all_keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _all_keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _all_keys(v)}
    return set()


def test_openai_switches_are_typed_and_never_rendered_upstream() -> None:
    body = {
        "model": "m",
        "messages": HI_OPENAI,
        "enable_history": True,
        "session_id": "s-1",
        "promptVariables": VARIABLES,
    }
    request = openai.parse_request(orjson.dumps(body))
    assert (request.enable_history, request.session_id, request.prompt_variables) == (
        True,
        "s-1",
        {"topic": "fruit"},
    )
    assert not set(SWITCHES) & set(request.passthrough)
    for render in (openai.render_request, bedrock.render_request, anthropic.render_request):
        assert not set(SWITCHES) & _all_keys(render(request, "up", drop_params=True))


def test_bedrock_switches_come_out_of_additional_model_request_fields() -> None:
    body = {
        "messages": HI_BEDROCK,
        "additionalModelRequestFields": {"enable_history": True, "session_id": "s-1", "top_k": 5, "x": 1},
        "promptVariables": VARIABLES,
    }
    request = bedrock.parse_request(orjson.dumps(body), model="m")
    assert (request.enable_history, request.session_id, request.prompt_variables) == (
        True,
        "s-1",
        {"topic": "fruit"},
    )
    rendered = bedrock.render_request(request, "up", drop_params=True)
    assert rendered["additionalModelRequestFields"] == {"x": 1, "top_k": 5}
    assert not set(SWITCHES) & _all_keys(rendered)


def test_bedrock_messages_may_be_left_out_for_a_managed_prompt() -> None:
    request = bedrock.parse_request(orjson.dumps({"promptVariables": VARIABLES}), model="arn")
    assert request.messages == ()


@pytest.mark.parametrize("where", ["top", "metadata"])
def test_anthropic_switches_top_level_or_in_metadata(where: str) -> None:
    switches = {"enable_history": True, "session_id": "s-1"}
    body: dict[str, Any] = {"model": "m", "max_tokens": 10, "messages": HI_OPENAI}
    if where == "top":
        body.update(switches)
    else:
        body["metadata"] = {"user_id": "u", **switches}
    request = anthropic.parse_request(orjson.dumps(body))
    assert (request.enable_history, request.session_id, request.user) == (
        True,
        "s-1",
        "u" if where != "top" else None,
    )
    rendered = anthropic.render_request(request, "up", drop_params=True)
    assert not set(SWITCHES) & _all_keys(rendered)


@pytest.mark.parametrize(
    ("dialect", "body", "param"),
    [
        (openai, {"model": "m", "messages": HI_OPENAI, "enable_history": "yes"}, "enable_history"),
        (openai, {"model": "m", "messages": HI_OPENAI, "session_id": 7}, "session_id"),
        (openai, {"model": "m", "messages": HI_OPENAI, "session_id": "x" * 200}, "session_id"),
        (
            openai,
            {"model": "m", "messages": [], "promptVariables": {"topic": "fruit"}},
            "promptVariables.topic",
        ),
        (openai, {"model": "m", "messages": [], "promptVariables": ["topic"]}, "promptVariables"),
        (
            bedrock,
            {"messages": HI_BEDROCK, "additionalModelRequestFields": {"session_id": ""}},
            "additionalModelRequestFields.session_id",
        ),
        (bedrock, {"promptVariables": {"t": {"text": "a", "extra": 1}}}, "promptVariables.t"),
        (
            anthropic,
            {"model": "m", "max_tokens": 1, "messages": HI_OPENAI, "metadata": {"enable_history": 1}},
            "metadata.enable_history",
        ),
    ],
)
def test_malformed_switches_are_refused_naming_the_field(
    dialect: Any, body: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        dialect.parse_request(orjson.dumps(body), model="m")
    assert info.value.param == param


def test_the_session_id_on_whole_answers() -> None:
    answer = ChatResponse("r1", "m", (TextPart("ok"),), usage=Usage(1, 1), session_id="s-1")
    assert orjson.loads(openai.render_response(answer))["session_id"] == "s-1"
    assert orjson.loads(anthropic.render_response(answer))["session_id"] == "s-1"
    assert "session_id" not in orjson.loads(bedrock.render_response(answer))  # a header instead
    plain = ChatResponse("r1", "m", (TextPart("ok"),))
    assert "session_id" not in orjson.loads(openai.render_response(plain))


def _sse_payloads(data: bytes) -> list[Any]:
    return [orjson.loads(line[6:]) for line in data.split(b"\n") if line.startswith(b"data: {")]


def test_the_session_id_is_on_the_first_openai_chunk_only() -> None:
    request = openai.parse_request(orjson.dumps({"model": "m", "messages": HI_OPENAI, "stream": True}))
    encoder = openai.stream_encoder(request)
    data = encoder.encode(MessageStart("r1", "m", session_id="s-1")) + encoder.encode(MessageStop("end_turn"))
    chunks = _sse_payloads(data)
    assert chunks[0]["session_id"] == "s-1"
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all("session_id" not in c for c in chunks[1:])


def test_the_session_id_on_the_anthropic_message_start() -> None:
    body = {"model": "m", "max_tokens": 5, "messages": HI_OPENAI, "stream": True}
    encoder = anthropic.stream_encoder(anthropic.parse_request(orjson.dumps(body)))
    start = _sse_payloads(encoder.encode(MessageStart("r1", "m", session_id="s-1")))[0]
    assert start["message"]["session_id"] == "s-1"
