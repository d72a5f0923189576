"""The official ``openai`` SDK (sync and async) against a real gateway on loopback."""

from __future__ import annotations

import base64
import struct

import openai
import pytest

from tests.e2e.conftest import MASTER_KEY

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        },
    }
]


@pytest.fixture
def client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=MASTER_KEY, base_url=f"{base_url}/v1", max_retries=0)


def test_chat_completion(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "hello gateway"}], max_tokens=50
    )
    assert resp.choices[0].message.content == "Hello from tollgate's fake upstream! You said: hello gateway"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "gpt-fake"
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == 3  # len("hello gateway") // 4
    assert resp.usage.completion_tokens == 9
    assert resp.usage.total_tokens == 12


def test_chat_completion_headers_name_the_deployment(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-fake", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-litellm-model-group"] == "gpt-fake"
    assert raw.headers["x-tollgate-attempts"] == "1"
    assert raw.headers["x-tollgate-deployment"]


def test_in_process_fake_provider(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="local-fake", messages=[{"role": "user", "content": "ping"}])
    assert resp.choices[0].message.content.endswith("You said: ping")


def test_max_tokens_truncates(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "hi"}], max_completion_tokens=2
    )
    assert resp.choices[0].message.content == "Hello from"
    assert resp.choices[0].finish_reason == "length"


def test_streaming_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-fake",
            messages=[{"role": "user", "content": "stream me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from tollgate's fake upstream! You said: stream me"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 9
    assert len({c.id for c in chunks}) == 1


def test_streaming_without_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-fake", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


def test_tool_call(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="gpt-fake",
        messages=[{"role": "user", "content": "weather?"}],
        tools=TOOLS,  # type: ignore[arg-type]
    )
    call = resp.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"example","days":1}'


def test_tool_call_streamed_argument_deltas(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-fake",
            messages=[{"role": "user", "content": "weather?"}],
            tools=TOOLS,  # type: ignore[arg-type]
            stream=True,
        )
    )
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function is not None and deltas[0].function.name == "get_weather"
    assert deltas[0].id
    args = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert args == '{"city":"example","days":1}'
    assert len(deltas) >= 3  # the start, then the arguments in pieces


def test_tool_result_round_trip(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model="gpt-fake",
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
    )
    assert (
        resp.choices[0].message.content
        == "Hello from tollgate's fake upstream! You said: tool results received"
    )


def test_embeddings_default_base64(client: openai.OpenAI) -> None:
    resp = client.embeddings.create(model="embed-fake", input=["one", "two"])
    assert len(resp.data) == 2
    assert len(resp.data[0].embedding) == 8
    assert resp.data[0].embedding != resp.data[1].embedding
    assert resp.model == "embed-fake"


def test_embeddings_float(base_url: str) -> None:
    import httpx

    body = {"model": "embed-fake", "input": "one", "encoding_format": "float"}
    got = httpx.post(
        f"{base_url}/embeddings", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}
    ).json()
    body["encoding_format"] = "base64"
    b64 = httpx.post(
        f"{base_url}/embeddings", json=body, headers={"Authorization": f"Bearer {MASTER_KEY}"}
    ).json()
    raw = base64.b64decode(b64["data"][0]["embedding"])
    decoded = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    assert decoded == pytest.approx(got["data"][0]["embedding"], abs=1e-6)


def test_models_list(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"gpt-fake", "embed-fake", "local-fake"} <= ids


async def test_async_client(base_url: str) -> None:
    client = openai.AsyncOpenAI(api_key=MASTER_KEY, base_url=base_url, max_retries=0)
    resp = await client.chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "async"}]
    )
    assert resp.choices[0].message.content.endswith("You said: async")
    stream = await client.chat.completions.create(
        model="gpt-fake", messages=[{"role": "user", "content": "async"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.endswith("You said: async")
    await client.close()


def test_wrong_key_is_401(base_url: str) -> None:
    client = openai.OpenAI(api_key="sk-wrong", base_url=base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="gpt-fake", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 401


def test_unknown_model_is_400_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert "no-such-model" in str(info.value)
    assert "sk-upstream-secret" not in str(info.value)


def test_upstream_429_maps_to_rate_limit(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="throttled", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 429


def test_upstream_500_maps_to_server_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 500
    assert "sk-upstream-secret" not in str(info.value.body)


def test_upstream_context_window_error_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="too-long", messages=[{"role": "user", "content": "x"}])
    assert "too long" in str(info.value)


def test_unreachable_upstream(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="unreachable", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502


def test_upstream_timeout(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="slow", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 408
