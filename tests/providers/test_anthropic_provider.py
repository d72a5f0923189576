"""AnthropicProvider round trips against the fake upstream (``tollgate fake-upstream``'s app) on a
loopback port, scripted to demand Anthropic's API key and version and to record requests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import orjson
import pytest

from tests.fakes.server import run_app_in_thread
from tollgate.canonical import (
    ChatRequest,
    EmbeddingRequest,
    Message,
    MessageStart,
    MessageStop,
    StreamEvent,
    TextDelta,
    TextPart,
    Tool,
    ToolCallPart,
)
from tollgate.config import Deployment
from tollgate.dialects.anthropic import messages as anthropic_messages
from tollgate.errors import (
    ContextWindowExceeded,
    InvalidRequest,
    UpstreamAuthError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from tollgate.fakes.script import Script
from tollgate.fakes.server import create_fake_app
from tollgate.providers import SendOptions, fake
from tollgate.providers.anthropic import AnthropicProvider, api_root
from tollgate.providers.http import HttpClient

TEST_API_KEY = "sk-ant-test-0001"
OPTIONS = SendOptions(timeout=10)
REQUEST = ChatRequest(
    model="claude",
    messages=(Message("user", (TextPart("Hello"),)),),
    system=(TextPart("Be brief."),),
    max_tokens=100,
)


@pytest.fixture(scope="module")
def upstream_at() -> Iterator[tuple[Script, str]]:
    upstream = Script(record=True, anthropic_api_keys={TEST_API_KEY})
    with run_app_in_thread(create_fake_app(script=upstream)) as base_url:
        yield upstream, base_url


@pytest.fixture
async def provider() -> AsyncIterator[AnthropicProvider]:
    http = HttpClient()
    yield AnthropicProvider(http, {})
    await http.aclose()


def deployment(base_url: str, *, api_key: str = TEST_API_KEY, **extra: object) -> Deployment:
    return Deployment(
        id="d1",
        model_name="claude",
        provider="anthropic",
        upstream_model="claude-3-5-sonnet-20241022",
        litellm_model="anthropic/claude-3-5-sonnet-20241022",
        api_base=base_url,
        api_key=api_key,
        **extra,  # type: ignore[arg-type]
    )


def reset(upstream: Script) -> Script:
    upstream.reset()
    return upstream


def test_api_root_does_not_double_v1() -> None:
    assert api_root(deployment("https://proxy.example/v1")) == "https://proxy.example"
    assert api_root(deployment("https://proxy.example/anthropic/")) == "https://proxy.example/anthropic"
    no_base = Deployment(id="x", model_name="m", provider="anthropic", upstream_model="c", litellm_model="c")
    assert api_root(no_base) == "https://api.anthropic.com"


async def test_chat_round_trip(upstream_at: tuple[Script, str], provider: AnthropicProvider) -> None:
    upstream, base_url = upstream_at
    reset(upstream)
    response = await provider.chat(deployment(base_url + "/v1"), REQUEST, OPTIONS)
    [seen] = upstream.requests
    expected = fake.reply(anthropic_messages.parse_request(seen.body))  # the fake model's answer
    assert response.parts == expected.parts
    assert response.finish_reason == "end_turn"
    assert response.usage == expected.usage
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == TEST_API_KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["content-type"] == "application/json"
    body = seen.json()
    assert body["model"] == "claude-3-5-sonnet-20241022"
    assert body["max_tokens"] == 100
    assert body["messages"][0]["role"] == "user"
    assert "stream" not in body


async def test_extra_headers_override_version(
    upstream_at: tuple[Script, str], provider: AnthropicProvider
) -> None:
    upstream, base_url = upstream_at
    reset(upstream)
    dep = deployment(base_url, extra_headers={"Anthropic-Version": "2024-01-01", "anthropic-beta": "x-1"})
    await provider.chat(dep, REQUEST, SendOptions(timeout=10, headers=(("traceparent", "00-abc-def-01"),)))
    headers = upstream.requests[0].headers
    assert headers["anthropic-version"] == "2024-01-01"
    assert headers["anthropic-beta"] == "x-1"
    assert headers["traceparent"] == "00-abc-def-01"


async def test_tool_use_round_trip(upstream_at: tuple[Script, str], provider: AnthropicProvider) -> None:
    upstream, base_url = upstream_at
    reset(upstream)
    upstream.reply = {
        "id": "msg_tool",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-5-sonnet-20241022",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 30, "output_tokens": 12},
    }
    try:
        request = ChatRequest(
            model="claude",
            messages=REQUEST.messages,
            max_tokens=50,
            tools=(
                Tool(
                    "get_weather", "Weather", {"type": "object", "properties": {"city": {"type": "string"}}}
                ),
            ),
        )
        response = await provider.chat(deployment(base_url), request, OPTIONS)
    finally:
        upstream.reply = None
    assert response.finish_reason == "tool_use"
    call = response.parts[1]
    assert isinstance(call, ToolCallPart)
    assert (call.id, call.name, orjson.loads(call.arguments)) == (
        "toolu_01",
        "get_weather",
        {"city": "Paris"},
    )
    sent_tools = upstream.requests[0].json()["tools"]
    assert sent_tools[0]["name"] == "get_weather"
    assert sent_tools[0]["input_schema"]["properties"] == {"city": {"type": "string"}}


async def test_stream_round_trip(upstream_at: tuple[Script, str], provider: AnthropicProvider) -> None:
    upstream, base_url = upstream_at
    reset(upstream)
    events: list[StreamEvent] = [
        e async for e in await provider.chat_stream(deployment(base_url), REQUEST, OPTIONS)
    ]
    assert isinstance(events[0], MessageStart)
    seen = upstream.requests[0]
    expected = fake.reply(anthropic_messages.parse_request(seen.body))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert (TextPart(text),) == expected.parts
    stop = events[-1]
    assert isinstance(stop, MessageStop)
    assert stop.finish_reason == "end_turn"
    assert stop.usage == expected.usage
    assert seen.json()["stream"] is True
    assert seen.headers["accept"] == "text/event-stream"


async def test_wrong_key_is_auth_error(upstream_at: tuple[Script, str], provider: AnthropicProvider) -> None:
    _, base_url = upstream_at
    with pytest.raises(UpstreamAuthError, match="invalid x-api-key"):
        await provider.chat(deployment(base_url, api_key="sk-wrong"), REQUEST, OPTIONS)
    with pytest.raises(UpstreamAuthError):
        await provider.chat_stream(deployment(base_url, api_key="sk-wrong"), REQUEST, OPTIONS)


async def test_rate_limit_carries_retry_after(
    upstream_at: tuple[Script, str], provider: AnthropicProvider
) -> None:
    upstream, base_url = upstream_at
    reset(upstream).fail_next(
        429, "rate_limit_error", "Number of request tokens has exceeded your rate limit", {"retry-after": "7"}
    )
    with pytest.raises(UpstreamRateLimited) as info:
        await provider.chat(deployment(base_url), REQUEST, OPTIONS)
    assert info.value.retry_after == 7.0


async def test_overloaded_stream_open(upstream_at: tuple[Script, str], provider: AnthropicProvider) -> None:
    upstream, base_url = upstream_at
    reset(upstream).fail_next(529, "overloaded_error", "Overloaded")
    with pytest.raises(UpstreamUnavailable, match="Overloaded"):
        await provider.chat_stream(deployment(base_url), REQUEST, OPTIONS)


async def test_prompt_too_long_is_context_window(
    upstream_at: tuple[Script, str], provider: AnthropicProvider
) -> None:
    upstream, base_url = upstream_at
    reset(upstream).fail_next(
        400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
    )
    with pytest.raises(ContextWindowExceeded):
        await provider.chat(deployment(base_url), REQUEST, OPTIONS)


async def test_embed_is_refused(provider: AnthropicProvider) -> None:
    with pytest.raises(InvalidRequest, match="no embeddings API") as info:
        await provider.embed(
            deployment("http://unused"), EmbeddingRequest(model="claude", inputs=("x",)), OPTIONS
        )
    assert info.value.param == "model"


async def test_passthrough_forwards_native_body(
    upstream_at: tuple[Script, str], provider: AnthropicProvider
) -> None:
    upstream, base_url = upstream_at
    reset(upstream)
    body = b'{"model":"claude-3-5-sonnet-20241022","messages":[{"role":"user","content":"hi"}]}'
    client_headers = {
        "X-Api-Key": "sk-client-key",
        "anthropic-beta": "tokens-2024",
        "Content-Type": "application/json",
        "Connection": "keep-alive",
    }
    stream = await provider.passthrough(
        deployment(base_url + "/v1"), "/v1/messages/count_tokens", body, client_headers
    )
    assert stream.status == 200
    counted = ChatRequest(model="claude-3-5-sonnet-20241022", messages=(Message("user", (TextPart("hi"),)),))
    assert orjson.loads(await stream.read_all()) == {"input_tokens": fake.input_tokens(counted)}
    seen = upstream.requests[0]
    assert seen.path == "/v1/messages/count_tokens"
    assert seen.body == body
    assert seen.headers["x-api-key"] == TEST_API_KEY
    assert seen.headers["anthropic-beta"] == "tokens-2024"
    assert seen.headers["anthropic-version"] == "2023-06-01"


async def test_passthrough_relays_error_status(
    upstream_at: tuple[Script, str], provider: AnthropicProvider
) -> None:
    _, base_url = upstream_at
    stream = await provider.passthrough(deployment(base_url, api_key="bad"), "/v1/messages", b"{}", {})
    assert stream.status == 401
    assert orjson.loads(await stream.read_all())["error"]["type"] == "authentication_error"
