"""Anthropic Messages dialect: message objects and error bodies, both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest

from tollgate.canonical import (
    ChatResponse,
    ImagePart,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    Usage,
)
from tollgate.dialects.anthropic import messages as dialect
from tollgate.errors import (
    BudgetExceeded,
    ContextWindowExceeded,
    GatewayError,
    InvalidRequest,
    NoDeploymentAvailable,
    NotFound,
    RateLimited,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamNotFound,
    UpstreamPermissionDenied,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "anthropic"


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()







# ---- responses ---------------------------------------------------------------------------------


def test_parse_response_fixture() -> None:
    resp = dialect.parse_response(_fixture("response_tool_use.json"))
    assert resp == ChatResponse(
        id="msg_01Aq9w938a90dw8q",
        model="claude-sonnet-4-5-20250929",
        parts=(
            ReasoningPart("I should look up the weather.", signature="EqQBCgIYAhIMsig"),
            TextPart("I'll check the current weather in Paris for you."),
            ToolCallPart(
                "toolu_01A09q90qw90lq917835lq9",
                "get_weather",
                '{"location":"Paris, France","unit":"celsius"}',
            ),
        ),
        finish_reason="tool_use",
        usage=Usage(input_tokens=472, output_tokens=89, cache_read_tokens=2048, cache_write_tokens=100),
    )


@pytest.mark.parametrize("body", [b"oops", b"[]", b'{"content": "x"}'])
def test_parse_response_rejects_malformed_bodies(body: bytes) -> None:
    with pytest.raises(UpstreamError):
        dialect.parse_response(body)


def test_parse_response_maps_other_stop_reasons_and_skips_server_blocks() -> None:
    body = {
        "id": "msg_1",
        "model": "m",
        "content": [
            {"type": "server_tool_use", "id": "srv", "name": "web_search", "input": {}},
            {"type": "redacted_thinking", "data": "abc"},
            {"type": "text", "text": "Stop"},
        ],
        "stop_reason": "stop_sequence",
        "stop_sequence": "STOP",
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    resp = dialect.parse_response(orjson.dumps(body))
    assert resp.parts == (ReasoningPart(redacted="abc"), TextPart("Stop"))
    assert (resp.finish_reason, resp.stop_sequence) == ("stop_sequence", "STOP")
    refusal = dialect.parse_response(orjson.dumps({**body, "stop_reason": "refusal"}))
    assert refusal.finish_reason == "content_filter"


def test_render_response_validates_with_the_sdk() -> None:
    resp = ChatResponse(
        id="chatcmpl-123",
        model="gpt-4o",
        parts=(
            ReasoningPart("hmm", signature="sig"),
            ReasoningPart(redacted="opaque"),
            TextPart("Calling."),
            ToolCallPart("call_1", "get_weather", '{"city": "Paris"}'),
            ToolCallPart("call_2", "broken", '{"city": '),
            ImagePart(url="https://x"),  # never model output: dropped
        ),
        finish_reason="tool_use",
        usage=Usage(input_tokens=10, output_tokens=20, cache_read_tokens=3, cache_write_tokens=4),
    )
    message = anthropic.types.Message.model_validate(orjson.loads(dialect.render_response(resp)))
    assert message.id == "msg_chatcmpl-123"
    assert message.model == "gpt-4o"
    assert message.stop_reason == "tool_use"
    assert message.stop_sequence is None
    thinking, redacted, text, call, broken = message.content
    assert isinstance(thinking, anthropic.types.ThinkingBlock)
    assert (thinking.thinking, thinking.signature) == ("hmm", "sig")
    assert isinstance(redacted, anthropic.types.RedactedThinkingBlock)
    assert redacted.data == "opaque"
    assert isinstance(text, anthropic.types.TextBlock)
    assert text.text == "Calling."
    assert isinstance(call, anthropic.types.ToolUseBlock)
    assert (call.id, call.name, call.input) == ("call_1", "get_weather", {"city": "Paris"})
    assert isinstance(broken, anthropic.types.ToolUseBlock)
    assert broken.input == {}
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (10, 20)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (3, 4)


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("end_turn", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("content_filter", "refusal"),
        ("error", "end_turn"),
    ],
)
def test_render_response_stop_reasons(finish: Any, stop_reason: str) -> None:
    resp = ChatResponse(
        id="msg_x", model="m", parts=(TextPart("a"),), finish_reason=finish, stop_sequence="S"
    )
    message = anthropic.types.Message.model_validate(orjson.loads(dialect.render_response(resp)))
    assert (message.id, message.stop_reason, message.stop_sequence) == ("msg_x", stop_reason, None)


def test_render_response_keeps_stop_sequence() -> None:
    resp = ChatResponse(id="msg_x", model="m", parts=(), finish_reason="stop_sequence", stop_sequence="END")
    data = orjson.loads(dialect.render_response(resp))
    assert (data["stop_reason"], data["stop_sequence"], data["content"]) == ("stop_sequence", "END", [])


# ---- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("err", "error_type"),
    [
        (InvalidRequest("bad", param="x"), "invalid_request_error"),
        (ContextWindowExceeded("too long"), "invalid_request_error"),
        (BudgetExceeded("over budget"), "invalid_request_error"),
        (UpstreamAuthError("no key"), "authentication_error"),
        (UpstreamPermissionDenied("denied"), "permission_error"),
        (NotFound("nope"), "not_found_error"),
        (RateLimited("slow down"), "rate_limit_error"),
        (UpstreamUnavailable("busy"), "overloaded_error"),
        (NoDeploymentAvailable("none"), "overloaded_error"),
        (UpstreamTimeout("late"), "api_error"),
        (UpstreamError("broken"), "api_error"),
    ],
)
def test_render_error(err: GatewayError, error_type: str) -> None:
    got_status, body, headers = dialect.render_error(err)
    assert got_status == err.status  # the class decides the status; the dialect only names it
    assert orjson.loads(body) == {"type": "error", "error": {"type": error_type, "message": err.message}}
    assert dict(headers) == {}


def test_render_error_keeps_a_custom_status() -> None:
    status, body, _ = dialect.render_error(BudgetExceeded("over budget", status=429))
    assert status == 429
    assert orjson.loads(body)["error"] == {"type": "invalid_request_error", "message": "over budget"}


def test_render_error_retry_after_and_extra_headers() -> None:
    err = RateLimited("slow down", retry_after=1.2, headers={"x-ratelimit-remaining-requests": "0"})
    _, _, headers = dialect.render_error(err)
    assert dict(headers) == {"retry-after": "2", "x-ratelimit-remaining-requests": "0"}


def test_parse_error_fixtures() -> None:
    overloaded = dialect.parse_error(529, _fixture("error_overloaded.json"), {})
    assert type(overloaded) is UpstreamUnavailable
    assert (overloaded.message, overloaded.provider) == ("Overloaded", "anthropic")
    too_long = dialect.parse_error(400, _fixture("error_prompt_too_long.json"), {})
    assert type(too_long) is ContextWindowExceeded
    assert too_long.message.startswith("prompt is too long")
    limited = dialect.parse_error(429, _fixture("error_rate_limit.json"), {"Retry-After": "17"})
    assert type(limited) is UpstreamRateLimited
    assert limited.retry_after == 17.0


@pytest.mark.parametrize(
    ("error_type", "status", "cls"),
    [
        ("invalid_request_error", 400, UpstreamBadRequest),
        ("authentication_error", 401, UpstreamAuthError),
        ("billing_error", 402, UpstreamPermissionDenied),
        ("permission_error", 403, UpstreamPermissionDenied),
        ("not_found_error", 404, UpstreamNotFound),
        ("request_too_large", 413, UpstreamBadRequest),
        ("timeout_error", 504, UpstreamTimeout),
        ("api_error", 500, UpstreamError),
        ("something_new", 503, UpstreamUnavailable),
    ],
)
def test_parse_error_by_type(error_type: str, status: int, cls: type[GatewayError]) -> None:
    body = orjson.dumps({"type": "error", "error": {"type": error_type, "message": "m"}})
    err = dialect.parse_error(status, body, {"retry-after": "soon"})
    assert type(err) is cls
    assert err.message == "m"
    assert err.retry_after is None
    if cls is UpstreamError:
        assert err.status == 500


def test_parse_error_without_json_uses_status_and_text() -> None:
    err = dialect.parse_error(502, b"<html>Bad Gateway</html>", {})
    assert type(err) is UpstreamError
    assert (err.status, err.message) == (502, "<html>Bad Gateway</html>")
    empty = dialect.parse_error(404, b"", {})
    assert type(empty) is UpstreamNotFound
    assert empty.message == "upstream answered HTTP 404"
