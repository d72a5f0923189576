"""OpenAI chat dialect: whole responses and error bodies, both ways."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from openai.types.chat import ChatCompletion

from tollgate.canonical import (
    ChatResponse,
    FinishReason,
    ReasoningPart,
    TextPart,
    ToolCallPart,
    Usage,
)
from tollgate.dialects.openai import chat as openai_chat
from tollgate.errors import (
    AuthenticationFailed,
    BudgetExceeded,
    ContentPolicyViolation,
    ContextWindowExceeded,
    GatewayError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    RateLimited,
    UnknownModel,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "openai"


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()





# ---- responses ---------------------------------------------------------------------------------


def test_parse_response_fixture() -> None:
    response = openai_chat.parse_response(_fixture("response_tool_call.json"))
    assert response == ChatResponse(
        id="chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        model="gpt-4o-2024-08-06",
        parts=(
            ToolCallPart("call_ujD3b6QmZ6Fz3ZJ4bSd7tBp0", "get_weather", '{"city":"Paris"}'),
            ToolCallPart("call_q3Rk1vYt2ZpW8mN0aLx5cE9s", "get_time", '{"tz":"CET"}'),
        ),
        finish_reason="tool_use",
        usage=Usage(input_tokens=93, output_tokens=46, cache_read_tokens=1024),
        created=1741570283,
    )
    assert response.usage.prompt_tokens == 1117


def test_parse_response_reasoning_and_text() -> None:
    body = orjson.dumps(
        {
            "id": "x",
            "model": "m",
            "created": 1,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "hi", "reasoning_content": "r"},
                 "finish_reason": "length"}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7,
                      "completion_tokens_details": {"reasoning_tokens": 3}},
        }
    )  # fmt: skip
    response = openai_chat.parse_response(body)
    assert response.parts == (ReasoningPart("r"), TextPart("hi"))
    assert response.finish_reason == "max_tokens"
    assert response.usage == Usage(input_tokens=5, output_tokens=7, reasoning_tokens=3)


@pytest.mark.parametrize("body", [b"oops", b'{"choices": []}', b'{"choices": [{"message": 1}]}'])
def test_parse_response_malformed_is_upstream_error(body: bytes) -> None:
    with pytest.raises(UpstreamError):
        openai_chat.parse_response(body)


def test_render_response_matches_openai_shape_and_sdk() -> None:
    response = ChatResponse(
        id="chatcmpl-1",
        model="gpt-4o",
        parts=(
            ReasoningPart("because"),
            TextPart("Hello "),
            TextPart("there"),
            ToolCallPart("c1", "f", '{"x":1}'),
        ),
        finish_reason="tool_use",
        usage=Usage(input_tokens=10, output_tokens=5, cache_read_tokens=4, reasoning_tokens=2),
        created=1700000000,
    )
    raw = openai_chat.render_response(response)
    assert orjson.loads(raw) == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o",
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello there",
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}
                    ],
                    "reasoning_content": "because",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 14,
            "completion_tokens": 5,
            "total_tokens": 19,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    }
    completion = ChatCompletion.model_validate(orjson.loads(raw))
    assert completion.choices[0].message.content == "Hello there"
    tool_calls = completion.choices[0].message.tool_calls
    assert tool_calls is not None and tool_calls[0].function.arguments == '{"x":1}'  # type: ignore[union-attr]
    assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 4
    assert completion.choices[0].finish_reason == "tool_calls"


def test_render_response_text_only_has_no_tool_calls_key() -> None:
    raw = openai_chat.render_response(ChatResponse(id="i", model="m", parts=(), created=1))
    message = orjson.loads(raw)["choices"][0]["message"]
    assert message == {"role": "assistant", "content": None, "refusal": None, "annotations": []}
    assert ChatCompletion.model_validate(orjson.loads(raw)).choices[0].message.content is None


def test_render_response_thinking_blocks_when_signed() -> None:
    raw = openai_chat.render_response(
        ChatResponse(id="i", model="m", parts=(ReasoningPart("t", "s"), TextPart("a")), created=1)
    )
    message = orjson.loads(raw)["choices"][0]["message"]
    assert message["thinking_blocks"] == [{"type": "thinking", "thinking": "t", "signature": "s"}]


@pytest.mark.parametrize(
    ("finish", "wire"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("content_filter", "content_filter"),
    ],
)
def test_finish_reason_mapping(finish: FinishReason, wire: str) -> None:
    raw = openai_chat.render_response(
        ChatResponse(id="i", model="m", parts=(), finish_reason=finish, created=1)
    )
    assert orjson.loads(raw)["choices"][0]["finish_reason"] == wire


# ---- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("err", "status", "error_type", "code"),
    [
        (InvalidRequest("bad", param="temperature"), 400, "invalid_request_error", "400"),
        (UnknownModel("no such model"), 400, "invalid_request_error", "400"),
        (NotFound("no key"), 404, "not_found_error", "404"),
        (AuthenticationFailed("no"), 401, "authentication_error", "401"),
        (PermissionDenied("no"), 403, "permission_error", "403"),
        (RateLimited("slow"), 429, "rate_limit_error", "429"),
        (BudgetExceeded("broke"), 400, "budget_exceeded", "400"),
        (ContextWindowExceeded("long"), 400, "invalid_request_error", "context_length_exceeded"),
        (ContentPolicyViolation("naughty"), 400, "invalid_request_error", "content_policy_violation"),
        (UpstreamTimeout("late"), 408, "timeout", "408"),
        (UpstreamUnavailable("busy"), 503, "api_error", "503"),
        (UpstreamError("boom"), 502, "api_error", "502"),
        (
            UpstreamRateLimited("x", code="rate_limit_exceeded"),
            429,
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
    ],
)
def test_render_error(err: GatewayError, status: int, error_type: str, code: str) -> None:
    got_status, body, headers = openai_chat.render_error(err)
    assert got_status == status
    assert orjson.loads(body) == {
        "error": {"message": err.message, "type": error_type, "param": err.param, "code": code}
    }
    assert headers == {}


def test_render_error_retry_after_rounds_up_and_keeps_headers() -> None:
    err = RateLimited("slow down", retry_after=2.1, headers={"x-ratelimit-remaining-requests": "0"})
    _, _, headers = openai_chat.render_error(err)
    assert headers == {"retry-after": "3", "x-ratelimit-remaining-requests": "0"}


def test_parse_error_context_window_by_code() -> None:
    err = openai_chat.parse_error(400, _fixture("error_context_length.json"), {})
    assert type(err) is ContextWindowExceeded
    assert err.message.startswith("This model's maximum context length is 128000 tokens")
    assert err.code == "context_length_exceeded" and err.param == "messages"


def test_parse_error_context_window_by_message() -> None:
    body = orjson.dumps({"error": {"message": "prompt is too long: 300000 tokens", "code": None}})
    assert type(openai_chat.parse_error(400, body, {})) is ContextWindowExceeded


def test_parse_error_content_policy() -> None:
    err = openai_chat.parse_error(400, _fixture("error_content_policy.json"), {})
    assert type(err) is ContentPolicyViolation
    assert err.code == "content_policy_violation"


def test_parse_error_rate_limit_with_retry_after_ms() -> None:
    headers = {"Retry-After-Ms": "2500", "retry-after": "3", "authorization": "Bearer sk-secret"}
    err = openai_chat.parse_error(429, _fixture("error_rate_limit.json"), headers)
    assert type(err) is UpstreamRateLimited
    assert err.retry_after == 2.5
    assert err.code == "rate_limit_exceeded"
    assert "sk-secret" not in repr(vars(err))


def test_parse_error_retry_after_seconds_and_status_classes() -> None:
    err = openai_chat.parse_error(503, b'{"error": {"message": "overloaded"}}', {"retry-after": "7"})
    assert type(err) is UpstreamUnavailable and err.retry_after == 7.0 and err.message == "overloaded"
    assert type(openai_chat.parse_error(401, b'{"error": {"message": "bad key"}}', {})) is UpstreamAuthError
    assert type(openai_chat.parse_error(400, b'{"error": {"message": "bad"}}', {})) is UpstreamBadRequest


def test_parse_error_raw_text_is_truncated() -> None:
    err = openai_chat.parse_error(500, b"<html>" + b"x" * 1000, {})
    assert type(err) is UpstreamError and err.status == 500
    assert err.message == ("<html>" + "x" * 1000)[:500]
