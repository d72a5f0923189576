"""The official ``anthropic`` SDK against a real gateway: Messages to every upstream format,
streaming, tool use, count_tokens, and the ``/anthropic/{path}`` passthrough."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.e2e.conftest_native import NATIVE_KEY, REPLY
from tollgate.policy.tokens import text_tokens

TOOLS = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    }
]
UPSTREAMS = ["claude-anthropic", "gpt-upstream", "claude-primary", "nova"]


@pytest.fixture(params=["", "/anthropic"])
def client(native_gateway: str, request: pytest.FixtureRequest) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=NATIVE_KEY, base_url=native_gateway + request.param, max_retries=0)


@pytest.mark.parametrize("model", UPSTREAMS)
def test_messages_create(client: anthropic.Anthropic, model: str) -> None:
    msg = client.messages.create(
        model=model, max_tokens=100, system="be nice", messages=[{"role": "user", "content": "hello gateway"}]
    )
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.model == model
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == REPLY + "hello gateway"  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == 5  # len("be nice" + "hello gateway") // 4
    assert msg.usage.output_tokens == 9


@pytest.mark.parametrize("model", UPSTREAMS)
def test_messages_stream(client: anthropic.Anthropic, model: str) -> None:
    with client.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "stream me"}]
    ) as stream:
        deltas = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(deltas) == REPLY + "stream me"
    assert len(deltas) == 9
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 9
    assert final.usage.input_tokens == 2


def test_max_tokens_stop_reason(client: anthropic.Anthropic) -> None:
    msg = client.messages.create(
        model="claude-primary", max_tokens=2, messages=[{"role": "user", "content": "hi"}]
    )
    assert msg.content[0].text == "Hello from"  # type: ignore[union-attr]
    assert msg.stop_reason == "max_tokens"


@pytest.mark.parametrize("model", UPSTREAMS)
def test_tool_use_round_trip(client: anthropic.Anthropic, model: str) -> None:
    first = client.messages.create(
        model=model,
        max_tokens=100,
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "weather in Paris?"}],
    )
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert use.name == "get_weather"  # type: ignore[union-attr]
    assert use.input == {"city": "example", "days": 1}  # type: ignore[union-attr]
    second = client.messages.create(
        model=model,
        max_tokens=100,
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "21C"}],  # type: ignore[union-attr]
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].text == REPLY + "tool results received"  # type: ignore[union-attr]


def test_tool_use_streamed(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model="claude-primary",
        max_tokens=100,
        tools=TOOLS,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "weather?"}],
    ) as stream:
        final = stream.get_final_message()
    use = final.content[0]
    assert use.type == "tool_use"
    assert use.input == {"city": "example", "days": 1}
    assert final.stop_reason == "tool_use"


def test_errors_are_anthropic_errors(client: anthropic.Anthropic, native_gateway: str) -> None:
    with pytest.raises(anthropic.RateLimitError) as throttled:
        client.messages.create(model="throttled", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert throttled.value.body == {  # type: ignore[comparison-overlap]
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "fake upstream error 429"},
    }
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="no-such", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    bad = anthropic.Anthropic(api_key="sk-wrong", base_url=native_gateway, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="nova", max_tokens=10, messages=[{"role": "user", "content": "x"}])


# ---- count_tokens ------------------------------------------------------------------------------


def test_count_tokens_from_the_anthropic_upstream(native_gateway: str) -> None:
    resp = httpx.post(
        f"{native_gateway}/v1/messages/count_tokens",
        json={"model": "claude-anthropic", "messages": [{"role": "user", "content": "hello world, count"}]},
        headers={"x-api-key": NATIVE_KEY, "anthropic-version": "2023-06-01"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"input_tokens": 4}
    assert resp.headers["x-tollgate-token-count"] == "upstream"


@pytest.mark.parametrize("model", ["gpt-upstream", "claude-primary", "local-fake"])
def test_count_tokens_estimate(client: anthropic.Anthropic, model: str) -> None:
    raw = client.messages.with_raw_response.count_tokens(
        model=model,
        system="abcd" * 3,
        messages=[{"role": "user", "content": "x" * 40}],
        tools=TOOLS,  # type: ignore[arg-type]
    )
    schema_chars = len(
        b'{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},'
        b'"required":["city","days"]}'
    )
    # policy.tokens: request 3, system ceil(12/4), message 4 + ceil(40/4), tool 8 + its texts
    tool = 8 + text_tokens("get_weather") + text_tokens("Weather for a city") + (schema_chars + 3) // 4
    expected = 3 + 3 + 4 + 10 + tool
    assert raw.parse().input_tokens == expected
    assert raw.headers["x-tollgate-token-count"] == "estimate"


def test_count_tokens_requires_a_key(native_gateway: str) -> None:
    resp = httpx.post(
        f"{native_gateway}/anthropic/v1/messages/count_tokens",
        json={"model": "nova", "messages": [{"role": "user", "content": "x"}]},
    )
    assert resp.status_code == 401
    assert resp.json()["type"] == "error"
    assert resp.json()["error"]["type"] == "authentication_error"


# ---- /anthropic/{path} passthrough -------------------------------------------------------------


def test_passthrough_relays_the_upstream_answer(native_gateway: str) -> None:
    # The fake Anthropic has no /v1/files: its 404 is relayed as it is.
    resp = httpx.post(
        f"{native_gateway}/anthropic/v1/files",
        json={"model": "claude-anthropic"},
        headers={"x-api-key": NATIVE_KEY},
    )
    assert resp.status_code == 404
    assert resp.headers["x-litellm-model-group"] == "claude-anthropic"


def test_passthrough_errors_in_anthropic_format(native_gateway: str) -> None:
    for body, headers, status, kind in [
        ({"model": "nova"}, {"x-api-key": NATIVE_KEY}, 400, "invalid_request_error"),
        ({}, {"x-api-key": NATIVE_KEY}, 400, "invalid_request_error"),
        ({"model": "claude-anthropic"}, {}, 401, "authentication_error"),
    ]:
        resp = httpx.post(f"{native_gateway}/anthropic/v1/files", json=body, headers=headers)
        assert resp.status_code == status, resp.text
        assert resp.json()["error"]["type"] == kind
