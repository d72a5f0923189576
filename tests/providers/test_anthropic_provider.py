"""AnthropicProvider round trips against a fake Anthropic API on a loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import orjson
import pytest

from tests.fakes.anthropic_upstream import TEST_API_KEY, FakeAnthropic
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
    Usage,
)
from tollgate.config import Deployment
from tollgate.errors import (
    ContextWindowExceeded,
    InvalidRequest,
    UpstreamAuthError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from tollgate.providers import SendOptions
from tollgate.providers.anthropic import AnthropicProvider, api_root
from tollgate.providers.http import HttpClient

OPTIONS = SendOptions(timeout=10)
REQUEST = ChatRequest(
    model="claude",
    messages=(Message("user", (TextPart("Hello"),)),),
    system=(TextPart("Be brief."),),
    max_tokens=100,
)


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeAnthropic, str]]:
    upstream = FakeAnthropic()
    with run_app_in_thread(upstream.app()) as base_url:
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


def reset(upstream: FakeAnthropic) -> FakeAnthropic:
    upstream.requests.clear()
    upstream.failures.clear()
    return upstream


def test_api_root_does_not_double_v1() -> None:
    assert api_root(deployment("https://proxy.example/v1")) == "https://proxy.example"
    assert api_root(deployment("https://proxy.example/anthropic/")) == "https://proxy.example/anthropic"
    no_base = Deployment(id="x", model_name="m", provider="anthropic", upstream_model="c", litellm_model="c")
    assert api_root(no_base) == "https://api.anthropic.com"


async def test_chat_round_trip(fake: tuple[FakeAnthropic, str], provider: AnthropicProvider) -> None:
    upstream, base_url = fake
    reset(upstream)
    response = await provider.chat(deployment(base_url + "/v1"), REQUEST, OPTIONS)
    assert response.parts == (TextPart("Hello from fake Anthropic"),)
    assert response.finish_reason == "end_turn"
    assert response.usage == Usage(input_tokens=10, output_tokens=6)
    [seen] = upstream.requests
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
    fake: tuple[FakeAnthropic, str], provider: AnthropicProvider
) -> None:
    upstream, base_url = fake
    reset(upstream)
    dep = deployment(base_url, extra_headers={"Anthropic-Version": "2024-01-01", "anthropic-beta": "x-1"})
    await provider.chat(dep, REQUEST, SendOptions(timeout=10, headers=(("traceparent", "00-abc-def-01"),)))
    headers = upstream.requests[0].headers
    assert headers["anthropic-version"] == "2024-01-01"
    assert headers["anthropic-beta"] == "x-1"
    assert headers["traceparent"] == "00-abc-def-01"


async def test_tool_use_round_trip(fake: tuple[FakeAnthropic, str], provider: AnthropicProvider) -> None:
    upstream, base_url = fake
    reset(upstream)
    upstream.message = {
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
        upstream.message = FakeAnthropic().message
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


async def test_stream_round_trip(fake: tuple[FakeAnthropic, str], provider: AnthropicProvider) -> None:
    upstream, base_url = fake
    reset(upstream)
    events: list[StreamEvent] = [
        e async for e in await provider.chat_stream(deployment(base_url), REQUEST, OPTIONS)
    ]
    assert isinstance(events[0], MessageStart)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == "Hi there"
    stop = events[-1]
    assert isinstance(stop, MessageStop)
    assert stop.finish_reason == "end_turn"
    assert stop.usage.input_tokens == 10
    assert stop.usage.output_tokens == 3
    seen = upstream.requests[0]
    assert seen.json()["stream"] is True
    assert seen.headers["accept"] == "text/event-stream"


async def test_wrong_key_is_auth_error(fake: tuple[FakeAnthropic, str], provider: AnthropicProvider) -> None:
    _, base_url = fake
    with pytest.raises(UpstreamAuthError, match="invalid x-api-key"):
        await provider.chat(deployment(base_url, api_key="sk-wrong"), REQUEST, OPTIONS)
    with pytest.raises(UpstreamAuthError):
        await provider.chat_stream(deployment(base_url, api_key="sk-wrong"), REQUEST, OPTIONS)


async def test_rate_limit_carries_retry_after(
    fake: tuple[FakeAnthropic, str], provider: AnthropicProvider
) -> None:
    upstream, base_url = fake
    reset(upstream).fail_next(
        429, "rate_limit_error", "Number of request tokens has exceeded your rate limit", {"retry-after": "7"}
    )
    with pytest.raises(UpstreamRateLimited) as info:
        await provider.chat(deployment(base_url), REQUEST, OPTIONS)
    assert info.value.retry_after == 7.0


async def test_overloaded_stream_open(fake: tuple[FakeAnthropic, str], provider: AnthropicProvider) -> None:
    upstream, base_url = fake
    reset(upstream).fail_next(529, "overloaded_error", "Overloaded")
    with pytest.raises(UpstreamUnavailable, match="Overloaded"):
        await provider.chat_stream(deployment(base_url), REQUEST, OPTIONS)


async def test_prompt_too_long_is_context_window(
    fake: tuple[FakeAnthropic, str], provider: AnthropicProvider
) -> None:
    upstream, base_url = fake
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
    fake: tuple[FakeAnthropic, str], provider: AnthropicProvider
) -> None:
    upstream, base_url = fake
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
    assert orjson.loads(await stream.read_all()) == {"input_tokens": len(body) // 4}
    seen = upstream.requests[0]
    assert seen.path == "/v1/messages/count_tokens"
    assert seen.body == body
    assert seen.headers["x-api-key"] == TEST_API_KEY
    assert seen.headers["anthropic-beta"] == "tokens-2024"
    assert seen.headers["anthropic-version"] == "2023-06-01"


async def test_passthrough_relays_error_status(
    fake: tuple[FakeAnthropic, str], provider: AnthropicProvider
) -> None:
    _, base_url = fake
    stream = await provider.passthrough(deployment(base_url, api_key="bad"), "/v1/messages", b"{}", {})
    assert stream.status == 401
    assert orjson.loads(await stream.read_all())["error"]["type"] == "authentication_error"
