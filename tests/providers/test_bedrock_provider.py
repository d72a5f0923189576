"""BedrockProvider round trips against the fake upstream (``tollgate fake-upstream``'s app), which
verifies SigV4 as AWS does, scripted to record requests and fail on demand."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator

import orjson
import pytest

from tests.fakes.server import run_app_in_thread
from tollgate.canonical import (
    ChatRequest,
    EmbeddingRequest,
    Message,
    MessageStop,
    StreamEvent,
    TextDelta,
    TextPart,
    Tool,
    ToolCallPart,
)
from tollgate.config import AwsSettings, Deployment
from tollgate.dialects.anthropic import messages as anthropic_messages
from tollgate.dialects.bedrock import converse as bedrock_converse
from tollgate.errors import (
    ContextWindowExceeded,
    UpstreamAuthError,
    UpstreamError,
    UpstreamPermissionDenied,
    UpstreamRateLimited,
    upstream_error_for_status,
)
from tollgate.fakes.script import Script
from tollgate.fakes.server import create_fake_app
from tollgate.fakes.sigv4 import TEST_ACCESS_KEY, TEST_SECRET_KEY
from tollgate.framing.eventstream import EventStreamDecoder
from tollgate.providers import SendOptions, fake
from tollgate.providers.bedrock import BedrockProvider, model_path
from tollgate.providers.http import HttpClient

OPTIONS = SendOptions(timeout=10)
KEYS = AwsSettings(region="us-east-1", access_key_id=TEST_ACCESS_KEY, secret_access_key=TEST_SECRET_KEY)
ARN = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0"
REQUEST = ChatRequest(model="claude", messages=(Message("user", (TextPart("Hello"),)),), max_tokens=64)


@pytest.fixture(scope="module")
def upstream_at() -> Iterator[tuple[Script, str]]:
    upstream = Script(record=True)
    with run_app_in_thread(create_fake_app(script=upstream)) as base_url:
        yield upstream, base_url


@pytest.fixture
def upstream(upstream_at: tuple[Script, str]) -> Script:
    script = upstream_at[0]
    script.reset()
    return script


def vector(text: str) -> tuple[float, ...]:
    """The fake's embedding of ``text`` (1024 dimensions, Titan's and Cohere's default)."""
    return fake.embed(EmbeddingRequest(model="fake", inputs=(text,)), 1024).vectors[0]


@pytest.fixture
async def provider() -> AsyncIterator[BedrockProvider]:
    http = HttpClient()
    yield BedrockProvider(http, {})
    await http.aclose()


def deployment(
    base_url: str, model: str = "anthropic.claude-3-haiku-20240307-v1:0", aws: AwsSettings = KEYS
) -> Deployment:
    return Deployment(
        id="b1",
        model_name="claude",
        provider="bedrock",
        upstream_model=model,
        litellm_model=f"bedrock/converse/{model}",
        api_base=base_url,
        aws=aws,
    )


def test_model_path_encodes_arns_like_boto3() -> None:
    assert model_path(ARN, "converse") == (
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile"
        "%2Fus.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    )
    assert (
        model_path("amazon.titan-embed-text-v2:0", "invoke") == "/model/amazon.titan-embed-text-v2%3A0/invoke"
    )


def test_default_endpoint_and_region(provider: BedrockProvider) -> None:
    dep = Deployment(
        id="x",
        model_name="m",
        provider="bedrock",
        upstream_model="meta.llama3-8b-instruct-v1:0",
        litellm_model="bedrock/meta.llama3-8b-instruct-v1:0",
        aws=AwsSettings(region="eu-west-1"),
    )
    assert provider.url(dep, "converse") == (
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/meta.llama3-8b-instruct-v1%3A0/converse"
    )
    arn_dep = Deployment(
        id="y",
        model_name="m",
        provider="bedrock",
        upstream_model=ARN.replace("us-east-1", "ap-northeast-1"),
        litellm_model="bedrock/arn",
        aws=AwsSettings(),
    )
    assert provider.region(arn_dep) == "ap-northeast-1"
    assert provider.signer(dep) is provider.signer(dep)


async def test_chat_round_trip_signed(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    request = ChatRequest(
        model="claude", messages=REQUEST.messages, system=(TextPart("Be brief."),), max_tokens=64
    )
    response = await provider.chat(deployment(upstream_at[1]), request, OPTIONS)
    [seen] = upstream.requests
    expected = fake.reply(bedrock_converse.parse_request(seen.body, model=seen.model_id))
    assert response.parts == expected.parts
    assert response.usage == expected.usage
    assert seen.operation == "converse"
    assert seen.model_id == "anthropic.claude-3-haiku-20240307-v1:0"
    assert seen.raw_path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    body = seen.json()
    assert "modelId" not in body
    assert body["system"] == [{"text": "Be brief."}]
    assert body["inferenceConfig"] == {"maxTokens": 64}
    assert body["messages"] == [{"role": "user", "content": [{"text": "Hello"}]}]
    assert seen.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={TEST_ACCESS_KEY}/")


async def test_arn_model_id_is_sent_encoded_and_signed(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    await provider.chat(deployment(upstream_at[1], ARN), REQUEST, OPTIONS)
    [seen] = upstream.requests
    assert seen.model_id == ARN
    assert seen.raw_path == model_path(ARN, "converse")


async def test_tool_use_round_trip(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    upstream.reply = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Oslo"}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 40, "outputTokens": 9, "totalTokens": 49},
    }
    request = ChatRequest(
        model="claude",
        messages=REQUEST.messages,
        max_tokens=64,
        tools=(
            Tool("get_weather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}}}),
        ),
    )
    response = await provider.chat(deployment(upstream_at[1]), request, OPTIONS)
    assert response.finish_reason == "tool_use"
    [call] = response.parts
    assert isinstance(call, ToolCallPart)
    assert (call.id, call.name, orjson.loads(call.arguments)) == (
        "tooluse_1",
        "get_weather",
        {"city": "Oslo"},
    )
    tool_spec = upstream.requests[0].json()["toolConfig"]["tools"][0]["toolSpec"]
    assert tool_spec["name"] == "get_weather"
    assert tool_spec["inputSchema"] == {
        "json": {"type": "object", "properties": {"city": {"type": "string"}}}
    }


async def test_stream_round_trip(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    stream = await provider.chat_stream(deployment(upstream_at[1], ARN), REQUEST, OPTIONS)
    events: list[StreamEvent] = [event async for event in stream]
    [seen] = upstream.requests
    expected = fake.reply(bedrock_converse.parse_request(seen.body, model=seen.model_id))
    assert (TextPart("".join(e.text for e in events if isinstance(e, TextDelta))),) == expected.parts
    stop = events[-1]
    assert isinstance(stop, MessageStop)
    assert stop.finish_reason == "end_turn"
    assert stop.usage == expected.usage
    assert seen.operation == "converse-stream"
    assert seen.model_id == ARN
    assert seen.headers["accept"] == "application/vnd.amazon.eventstream"


async def test_stream_exception_mid_stream(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    upstream.stream_error = upstream_error_for_status(429, "Too many tokens, please wait.")
    stream = await provider.chat_stream(deployment(upstream_at[1]), REQUEST, OPTIONS)
    with pytest.raises(UpstreamRateLimited, match="Too many tokens"):
        _ = [event async for event in stream]


async def test_wrong_secret_is_rejected(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    wrong = AwsSettings(region="us-east-1", access_key_id=TEST_ACCESS_KEY, secret_access_key="not-the-secret")
    with pytest.raises(UpstreamAuthError, match="signature we calculated does not match"):
        await provider.chat(deployment(upstream_at[1], aws=wrong), REQUEST, OPTIONS)
    with pytest.raises(UpstreamAuthError, match="signature we calculated does not match"):
        await provider.chat_stream(deployment(upstream_at[1], aws=wrong), REQUEST, OPTIONS)


async def test_unknown_access_key_is_rejected(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    unknown = AwsSettings(region="us-east-1", access_key_id="AKIAUNKNOWN", secret_access_key="x")
    with pytest.raises(UpstreamAuthError, match="security token included in the request is invalid"):
        await provider.chat(deployment(upstream_at[1], aws=unknown), REQUEST, OPTIONS)


async def test_access_denied(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    upstream.fail_next(
        403, "AccessDeniedException", "You don't have access to the model with the specified model ID."
    )
    with pytest.raises(UpstreamPermissionDenied, match="don't have access"):
        await provider.chat(deployment(upstream_at[1]), REQUEST, OPTIONS)


async def test_throttling_with_retry_after(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    upstream.fail_next(
        429,
        "ThrottlingException",
        "Too many requests, please wait before trying again.",
        {"retry-after": "3"},
    )
    with pytest.raises(UpstreamRateLimited) as info:
        await provider.chat(deployment(upstream_at[1]), REQUEST, OPTIONS)
    assert info.value.retry_after == 3.0
    assert info.value.retryable


async def test_input_too_long_is_context_window(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    upstream.fail_next(400, "ValidationException", "Input is too long for requested model.")
    with pytest.raises(ContextWindowExceeded):
        await provider.chat_stream(deployment(upstream_at[1]), REQUEST, OPTIONS)


async def test_titan_embeddings_one_call_per_input(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    model = "amazon.titan-embed-text-v2:0"
    request = EmbeddingRequest(model="titan", inputs=("one", "two words", "three little words"))
    response = await provider.embed(deployment(upstream_at[1], model), request, OPTIONS)
    assert response.vectors == (vector("one"), vector("two words"), vector("three little words"))
    assert response.usage.input_tokens == 1 + 2 + 4  # the fake counts characters / 4, at least 1
    assert sorted(r.json()["inputText"] for r in upstream.requests) == [
        "one",
        "three little words",
        "two words",
    ]
    assert {r.raw_path for r in upstream.requests} == {"/model/amazon.titan-embed-text-v2%3A0/invoke"}


async def test_cohere_embeddings_one_call(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    request = EmbeddingRequest(model="cohere", inputs=("alpha", "beta"), input_type="search_query")
    response = await provider.embed(deployment(upstream_at[1], "cohere.embed-english-v3"), request, OPTIONS)
    assert response.vectors == (vector("alpha"), vector("beta"))
    [seen] = upstream.requests
    assert seen.json()["texts"] == ["alpha", "beta"]
    assert seen.json()["input_type"] == "search_query"


async def test_embedding_failure_raises(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    upstream.fail_next(429, "ThrottlingException", "Rate exceeded")
    request = EmbeddingRequest(model="titan", inputs=("a", "b"))
    with pytest.raises(UpstreamRateLimited, match="Rate exceeded"):
        await provider.embed(deployment(upstream_at[1], "amazon.titan-embed-text-v1"), request, OPTIONS)


async def test_invoke_passthrough(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    body = b'{"anthropic_version":"bedrock-2023-05-31","max_tokens":10,'
    body += b'"messages":[{"role":"user","content":"hi"}]}'
    headers = {"X-Amzn-Bedrock-Trace": "ENABLED", "Authorization": "Bearer client-key"}
    answer = await provider.invoke(deployment(upstream_at[1], ARN), body, False, headers=headers)
    assert answer.status == 200
    expected = fake.reply(anthropic_messages.parse_request(body, model=ARN))  # Anthropic on Bedrock
    assert orjson.loads(await answer.read_all()) == orjson.loads(anthropic_messages.render_response(expected))
    [seen] = upstream.requests
    assert seen.body == body
    assert seen.operation == "invoke"
    assert seen.headers["x-amzn-bedrock-trace"] == "ENABLED"
    assert seen.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")


async def test_invoke_stream_passthrough(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    model = "amazon.titan-text-express-v1"
    answer = await provider.invoke(deployment(upstream_at[1], model), b"{}", True)
    assert answer.status == 200
    decoder = EventStreamDecoder()
    messages = [m for chunk in [c async for c in answer.chunks()] for m in decoder.feed(chunk)]
    assert [m.event_type for m in messages] == ["chunk"]
    payload = orjson.loads(base64.b64decode(orjson.loads(messages[0].payload)["bytes"]))
    assert (payload["echo"], payload["model"]) == ({}, model)
    assert upstream.requests[0].operation == "invoke-with-response-stream"


async def test_invoke_relays_errors(
    upstream_at: tuple[Script, str], upstream: Script, provider: BedrockProvider
) -> None:
    upstream.fail_next(400, "ValidationException", "Malformed input request")
    answer = await provider.invoke(deployment(upstream_at[1]), b"{}", False)
    assert answer.status == 400
    assert answer.headers["x-amzn-ErrorType"].startswith("ValidationException")
    assert orjson.loads(await answer.read_all()) == {"message": "Malformed input request"}


async def test_connection_refused_is_upstream_error(provider: BedrockProvider) -> None:
    with pytest.raises(UpstreamError, match="cannot connect"):
        await provider.chat(deployment("http://127.0.0.1:9"), REQUEST, OPTIONS)
