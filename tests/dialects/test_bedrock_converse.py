"""Bedrock Converse dialect: parse/render both ways, errors, and real boto3 against our bytes."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.fakes.server import Responder, responding
from tollgate.canonical import (
    ChatRequest,
    ChatResponse,
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
    Usage,
)
from tollgate.dialects.bedrock import converse as bedrock
from tollgate.errors import (
    AuthenticationFailed,
    BudgetExceeded,
    ContextWindowExceeded,
    GatewayError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamNotFound,
    UpstreamPermissionDenied,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "bedrock"
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"



def _fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def fake_bedrock(respond: Responder) -> AbstractContextManager[str]:
    """A local HTTP server answering every POST with ``respond(path, body)``."""
    return responding(respond)


def bedrock_client(endpoint: str) -> Any:
    return boto3.client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"total_max_attempts": 1}),
    )


def model_from_path(path: str) -> str:
    return unquote(path.split("/")[2])


# ---- parse_request ----------------------------------------------------------------------------


def test_parse_request_fixture() -> None:
    request = bedrock.parse_request((FIXTURES / "converse_request.json").read_bytes(), model=MODEL)
    assert request.model == MODEL
    assert request.system == (TextPart("You are terse.", cache_control=True),)
    user, assistant, result = request.messages
    assert user == Message(
        "user",
        (
            TextPart("What is the weather in Paris?", cache_control=True),
            ImagePart(media_type="image/png", data="iVBORw0KGgo="),
            DocumentPart("application/pdf", "JVBERi0xLjQ=", "report"),
        ),
    )
    assert assistant.parts == (
        ReasoningPart("I need the weather tool.", signature="sig-1"),
        TextPart("Let me check."),
        ToolCallPart("tooluse_1", "get_weather", '{"city":"Paris"}'),
    )
    assert result.parts == (ToolResultPart("tooluse_1", (TextPart("18C, cloudy"),)),)
    assert request.max_tokens == 512
    assert request.temperature == 0.5
    assert request.top_p == 0.9
    assert request.stop == ("END",)
    assert request.top_k == 40
    assert request.reasoning == Reasoning(budget_tokens=2048)
    assert request.tool_choice == ToolChoice("required")
    (tool,) = request.tools
    assert tool.name == "get_weather"
    assert tool.cache_control is True
    assert tool.parameters["required"] == ["city"]
    assert request.metadata == {"team": "search"}
    assert request.passthrough == {
        "guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "1"},
        "additionalModelRequestFields": {"anthropic_beta": ["token-efficient-tools-2025-02-19"]},
    }
    assert request.passthrough_dialect == "bedrock"


def test_parse_then_render_reproduces_the_request() -> None:
    original = _fixture("converse_request.json")
    request = bedrock.parse_request(orjson.dumps(original), model=MODEL)
    rendered = bedrock.render_request(request, MODEL, drop_params=False)
    del original["requestMetadata"]  # canonical metadata stays in the gateway
    assert rendered == original


def test_tool_result_json_redacted_reasoning_and_tool_choice() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "toolResult": {
                            "toolUseId": "t1",
                            "content": [{"json": {"temp": 18, "sky": "cloudy"}}, {"text": "ok"}],
                            "status": "error",
                        }
                    },
                    {"cachePoint": {"type": "default"}},
                ],
            },
            {"role": "assistant", "content": [{"reasoningContent": {"redactedContent": "b3BhcXVl"}}]},
        ],
        "toolConfig": {
            "tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}],
            "toolChoice": {"tool": {"name": "f"}},
        },
        "additionalModelRequestFields": {"thinking": {"type": "disabled"}},
    }
    request = bedrock.parse_request(orjson.dumps(body), model=MODEL)
    assert request.messages[0].parts == (
        ToolResultPart(
            "t1",
            (TextPart('{"temp":18,"sky":"cloudy"}'), TextPart("ok", cache_control=True)),
            is_error=True,
        ),
    )
    assert request.messages[1].parts == (ReasoningPart(redacted="b3BhcXVl"),)
    assert request.tool_choice == ToolChoice("tool", "f")
    assert request.reasoning is None
    assert request.passthrough == {}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[]", "body"),
        (b'{"messages":{}}', "messages"),
        (b'{"messages":[{"role":"system","content":[]}]}', "messages[0].role"),
        (b'{"messages":[{"role":"user","content":[{"video":{}}]}]}', "messages[0].content[0]"),
        (b'{"messages":[{"role":"user","content":[{"text":5}]}]}', "messages[0].content[0].text"),
        (
            b'{"messages":[{"role":"user","content":[{"image":{"format":"bmp","source":{"bytes":""}}}]}]}',
            "messages[0].content[0].image.format",
        ),
        (
            b'{"messages":[{"role":"user","content":[{"image":{"format":"png","source":{"s3Location":{}}}}]}]}',
            "messages[0].content[0].image.source",
        ),
        (b'{"messages":[],"inferenceConfig":{"maxTokens":"10"}}', "inferenceConfig.maxTokens"),
        (b'{"messages":[],"inferenceConfig":{"temperature":true}}', "inferenceConfig.temperature"),
        (
            b'{"messages":[],"toolConfig":{"tools":[{"toolSpec":{"name":"f"}}]}}',
            "toolConfig.tools[0].toolSpec.inputSchema",
        ),
        (b'{"messages":[],"toolConfig":{"tools":[],"toolChoice":{"none":{}}}}', "toolConfig.toolChoice"),
        (b'{"messages":[],"system":[{"guardContent":{}}]}', "system[0]"),
    ],
)
def test_parse_request_rejects_bad_input_naming_the_field(body: bytes, param: str | None) -> None:
    with pytest.raises(InvalidRequest) as info:
        bedrock.parse_request(body, model=MODEL)
    assert info.value.param == param


def test_parse_request_requires_the_model_from_the_path() -> None:
    with pytest.raises(InvalidRequest) as info:
        bedrock.parse_request(b'{"messages":[]}')
    assert info.value.param == "modelId"


# ---- render_request ---------------------------------------------------------------------------


def _request(*parts: Any, **kwargs: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=(Message("user", parts),), **kwargs)


def test_render_request_images_and_documents() -> None:
    request = _request(
        ImagePart(media_type="image/jpg", data="AAAA"),
        ImagePart(url="data:image/webp;base64,BBBB"),
        DocumentPart("text/x-python", "Q0NDQw==", "my file.py"),
        TextPart(""),
    )
    body = bedrock.render_request(request, "m", drop_params=False)
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"image": {"format": "jpeg", "source": {"bytes": "AAAA"}}},
                {"image": {"format": "webp", "source": {"bytes": "BBBB"}}},
                {"document": {"format": "txt", "name": "my file-py", "source": {"bytes": "Q0NDQw=="}}},
            ],
        }
    ]


def test_render_request_image_url_needs_drop_params() -> None:
    request = _request(TextPart("look"), ImagePart(url="https://example.com/cat.png"))
    with pytest.raises(InvalidRequest) as info:
        bedrock.render_request(request, "m", drop_params=False)
    assert info.value.param == "messages[0][1]"
    body = bedrock.render_request(request, "m", drop_params=True)
    assert body["messages"] == [{"role": "user", "content": [{"text": "look"}]}]


def test_render_request_tool_calls_results_and_choice() -> None:
    request = ChatRequest(
        model="m",
        messages=(
            Message("assistant", (ToolCallPart("c1", "f", "{not json"), ToolCallPart("c2", "f", '{"a":1}'))),
            Message("user", (ToolResultPart("c1", (TextPart("boom"),), is_error=True),)),
        ),
        tools=(Tool("f", "does f", {"type": "object"}, strict=True),),
        tool_choice=ToolChoice("tool", "f"),
        reasoning=Reasoning(effort="medium"),
    )
    body = bedrock.render_request(request, "m", drop_params=False)
    assert body["messages"] == [
        {
            "role": "assistant",
            "content": [
                {"toolUse": {"toolUseId": "c1", "name": "f", "input": {}}},
                {"toolUse": {"toolUseId": "c2", "name": "f", "input": {"a": 1}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "c1", "content": [{"text": "boom"}], "status": "error"}}
            ],
        },
    ]
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "f",
                    "inputSchema": {"json": {"type": "object"}},
                    "description": "does f",
                    "strict": True,
                }
            }
        ],
        "toolChoice": {"tool": {"name": "f"}},
    }
    assert body["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}


def test_render_request_tool_choice_none() -> None:
    request = _request(TextPart("hi"), tools=(Tool("f"),), tool_choice=ToolChoice("none"))
    with pytest.raises(InvalidRequest) as info:
        bedrock.render_request(request, "m", drop_params=False)
    assert info.value.param == "tool_choice"
    assert "toolConfig" not in bedrock.render_request(request, "m", drop_params=True)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"response_format": ResponseFormat("json_object")}, "response_format"),
        ({"seed": 3}, "seed"),
        ({"n": 2}, "n"),
        ({"presence_penalty": 0.1}, "presence_penalty"),
        ({"frequency_penalty": 0.1}, "frequency_penalty"),
    ],
)
def test_render_request_unsupported_parameters(kwargs: dict[str, Any], param: str) -> None:
    request = _request(TextPart("hi"), **kwargs)
    with pytest.raises(InvalidRequest) as info:
        bedrock.render_request(request, "m", drop_params=False)
    assert info.value.param == param
    assert bedrock.render_request(request, "m", drop_params=True) == {
        "messages": [{"role": "user", "content": [{"text": "hi"}]}]
    }


def test_render_request_ignores_foreign_passthrough() -> None:
    request = _request(
        TextPart("hi"),
        passthrough={"guardrailConfig": {"x": 1}},
        passthrough_dialect="anthropic",
        top_k=5,
        max_tokens=9,
    )
    assert bedrock.render_request(request, "m", drop_params=False) == {
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "inferenceConfig": {"maxTokens": 9},
        "additionalModelRequestFields": {"top_k": 5},
    }


# ---- responses --------------------------------------------------------------------------------


def test_parse_response_fixture_and_render_round_trip() -> None:
    raw = (FIXTURES / "converse_response.json").read_bytes()
    response = bedrock.parse_response(raw)
    assert response.parts == (
        ReasoningPart("User wants weather.", signature="c2lnbmF0dXJl"),
        TextPart("I'll look that up."),
        ToolCallPart("tooluse_abc", "get_weather", '{"city":"Paris","unit":"C"}'),
    )
    assert response.finish_reason == "tool_use"
    assert response.usage == Usage(120, 45, 200, 100)
    assert response.usage.total_tokens == 465
    assert orjson.loads(bedrock.render_response(response)) == orjson.loads(raw)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("max_tokens", "max_tokens"),
    ],
)
def test_parse_response_stop_reasons(stop_reason: str, finish: str) -> None:
    body = {"output": {"message": {"role": "assistant", "content": []}}, "stopReason": stop_reason}
    assert bedrock.parse_response(orjson.dumps(body)).finish_reason == finish


def test_parse_response_malformed_is_upstream_error() -> None:
    with pytest.raises(UpstreamError, match="malformed"):
        bedrock.parse_response(b'{"output": 3}')


# ---- errors -----------------------------------------------------------------------------------


def _aws(error_type: str) -> dict[str, str]:
    return {"x-amzn-ErrorType": error_type}


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls", "error_status"),
    [
        (429, b'{"message":"m"}', _aws("ThrottlingException:http://internal/"), UpstreamRateLimited, 429),
        (503, b'{"message":"m"}', {"X-Amzn-ErrorType": "ServiceUnavailableException"},
         UpstreamUnavailable, 503),
        (429, b'{"message":"m"}', _aws("ModelNotReadyException"), UpstreamUnavailable, 503),
        (408, b'{"message":"m"}', _aws("ModelTimeoutException"), UpstreamTimeout, UpstreamTimeout.status),
        (403, b'{"Message":"m"}', _aws("AccessDeniedException"), UpstreamPermissionDenied, 403),
        (403, b'{"message":"m"}', _aws("UnrecognizedClientException"), UpstreamAuthError, 401),
        (403, b'{"message":"m"}', _aws("InvalidSignatureException"), UpstreamAuthError, 401),
        (404, b'{"message":"m"}', _aws("ResourceNotFoundException"), UpstreamNotFound, 404),
        (400, b'{"message":"m"}', _aws("ValidationException"), UpstreamBadRequest, 400),
        (500, b'{"message":"m"}', _aws("InternalServerException"), UpstreamError, 500),
        (429, b'{"__type":"aws#ThrottlingException","message":"m"}', {}, UpstreamRateLimited, 429),
        (502, b"m", {}, UpstreamError, 502),
    ],
)
def test_parse_error(
    status: int, body: bytes, headers: dict[str, str], cls: type[GatewayError], error_status: int
) -> None:
    err = bedrock.parse_error(status, body, headers)
    assert type(err) is cls
    assert err.status == error_status
    assert err.message == "m"
    assert isinstance(err, UpstreamError)
    assert err.provider == "bedrock"


@pytest.mark.parametrize(
    "message", ["Input is too long for requested model.", "prompt is too long: 300000 tokens"]
)
def test_parse_error_context_window(message: str) -> None:
    err = bedrock.parse_error(400, orjson.dumps({"message": message}), _aws("ValidationException"))
    assert type(err) is ContextWindowExceeded
    assert err.message == message


def test_parse_error_retry_after() -> None:
    err = bedrock.parse_error(429, b"{}", {"x-amzn-ErrorType": "ThrottlingException", "Retry-After": "2"})
    assert err.retry_after == 2.0


ERROR_CASES: list[tuple[GatewayError, int, str]] = [
    (InvalidRequest("bad"), 400, "ValidationException"),
    (ContextWindowExceeded("too long"), 400, "ValidationException"),
    (BudgetExceeded("over budget"), 400, "ValidationException"),
    (NotFound("no such model"), 404, "ResourceNotFoundException"),
    (AuthenticationFailed("bad key"), 401, "UnrecognizedClientException"),
    (PermissionDenied("not allowed"), 403, "AccessDeniedException"),
    (UpstreamRateLimited("slow down"), 429, "ThrottlingException"),
    (UpstreamUnavailable("busy"), 503, "ServiceUnavailableException"),
    (UpstreamTimeout("timed out"), 408, "ModelTimeoutException"),
    (UpstreamError("boom"), 500, "InternalServerException"),
]


@pytest.mark.parametrize(("err", "status", "error_type"), ERROR_CASES)
def test_render_error(err: GatewayError, status: int, error_type: str) -> None:
    got_status, body, headers = bedrock.render_error(err)
    assert got_status == status
    assert orjson.loads(body) == {"message": err.message}
    assert headers == {"x-amzn-ErrorType": error_type, "content-type": "application/json"}


# ---- boto3 end to end -------------------------------------------------------------------------


def test_boto3_converse_with_tool_use() -> None:
    seen: list[ChatRequest] = []

    def respond(path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        assert path.endswith("/converse")
        seen.append(bedrock.parse_request(body, model=model_from_path(path)))
        response = ChatResponse(
            id="msg_1",
            model=MODEL,
            parts=(TextPart("Checking."), ToolCallPart("tooluse_9", "get_weather", '{"city":"Paris"}')),
            finish_reason="tool_use",
            usage=Usage(input_tokens=11, output_tokens=7, cache_read_tokens=3),
        )
        return 200, {"content-type": "application/json"}, bedrock.render_response(response)

    with fake_bedrock(respond) as endpoint:
        result = bedrock_client(endpoint).converse(
            modelId=MODEL,
            system=[{"text": "Be brief."}],
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"text": "Weather?"},
                        {"image": {"format": "png", "source": {"bytes": b"\x89PNG"}}},
                    ],
                }
            ],
            inferenceConfig={"maxTokens": 100, "temperature": 0.2},
            toolConfig={
                "tools": [{"toolSpec": {"name": "get_weather", "inputSchema": {"json": {"type": "object"}}}}],
                "toolChoice": {"auto": {}},
            },
        )

    (request,) = seen
    assert request.model == MODEL
    assert request.system == (TextPart("Be brief."),)
    assert request.messages[0].parts == (TextPart("Weather?"), ImagePart("image/png", data="iVBORw=="))
    assert request.max_tokens == 100
    assert request.tools[0].name == "get_weather"
    assert result["output"] == {
        "message": {
            "role": "assistant",
            "content": [
                {"text": "Checking."},
                {"toolUse": {"toolUseId": "tooluse_9", "name": "get_weather", "input": {"city": "Paris"}}},
            ],
        }
    }
    assert result["stopReason"] == "tool_use"
    assert result["usage"] == {
        "inputTokens": 11,
        "outputTokens": 7,
        "totalTokens": 21,
        "cacheReadInputTokens": 3,
        "cacheWriteInputTokens": 0,
    }
    assert result["metrics"] == {"latencyMs": 0}


@pytest.mark.parametrize(("err", "status", "error_type"), ERROR_CASES)
def test_boto3_sees_each_error_code(err: GatewayError, status: int, error_type: str) -> None:
    def respond(path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        code, payload, headers = bedrock.render_error(err)
        return code, dict(headers), payload

    with fake_bedrock(respond) as endpoint, pytest.raises(ClientError) as info:
        messages = [{"role": "user", "content": [{"text": "hi"}]}]
        bedrock_client(endpoint).converse(modelId=MODEL, messages=messages)
    assert info.value.response["Error"]["Code"] == error_type
    assert info.value.response["Error"]["Message"] == err.message
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
