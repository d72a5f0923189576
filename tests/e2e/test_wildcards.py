"""LiteLLM's wildcard routing end to end: ``openai/*``, ``anthropic/*`` and ``*`` deployments in
front of the fake upstream, driven by the official SDKs; the upstream receives the model the
client named, and key access lists with wildcards admit and refuse the same way."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from tests.e2e.servers import gateway

MASTER = "sk-wild-master"


@pytest.fixture(scope="module")
def wild(upstream: str) -> Iterator[str]:
    config = {
        "model_list": [
            {
                "model_name": "openai/*",
                "litellm_params": {"model": "openai/*", "api_base": f"{upstream}/v1", "api_key": "sk-up"},
            },
            {
                "model_name": "anthropic/*",
                "litellm_params": {"model": "anthropic/*", "api_base": upstream, "api_key": "sk-up"},
            },
            {"model_name": "*", "litellm_params": {"model": "fake/*"}},
        ],
        "general_settings": {"master_key": MASTER, "database_url": "memory"},
    }
    with gateway(config) as url:
        yield url


def _key(url: str, models: list[str]) -> str:
    auth = {"Authorization": f"Bearer {MASTER}"}
    made = httpx.post(f"{url}/key/generate", json={"models": models}, headers=auth, timeout=30)
    assert made.status_code == 200, made.text
    key: str = made.json()["key"]
    return key


def _upstream_calls(upstream: str) -> dict[str, int]:
    calls: dict[str, int] = httpx.get(f"{upstream}/_fake/calls").json()
    return calls


def test_the_clients_model_reaches_the_upstream(wild: str, upstream: str) -> None:
    gpt, claude = f"gpt-wild-{uuid.uuid4().hex[:6]}", f"claude-wild-{uuid.uuid4().hex[:6]}"
    chat = openai.OpenAI(api_key=MASTER, base_url=f"{wild}/v1", max_retries=0).chat.completions.create(
        model=f"openai/{gpt}", messages=[{"role": "user", "content": "hi"}]
    )
    assert chat.choices[0].message.content
    message = anthropic.Anthropic(api_key=MASTER, base_url=wild, max_retries=0).messages.create(
        model=f"anthropic/{claude}", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.content[0].type == "text"
    calls = _upstream_calls(upstream)
    assert calls.get(gpt) == 1 and calls.get(claude) == 1, calls


def test_the_catch_all_serves_any_other_name(wild: str) -> None:
    chat = openai.OpenAI(api_key=MASTER, base_url=f"{wild}/v1", max_retries=0).chat.completions.create(
        model="some-local-model", messages=[{"role": "user", "content": "hi"}]
    )
    assert chat.model == "some-local-model"
    assert chat.choices[0].message.content


def _status(url: str, key: str, model: str) -> int:
    answer = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    return answer.status_code


def test_access_lists_match_wildcards_the_same_way(wild: str) -> None:
    provider_wide = _key(wild, ["anthropic/*"])
    assert _status(wild, provider_wide, "anthropic/claude-any") == 200
    assert _status(wild, provider_wide, "openai/gpt-any") == 401
    assert _status(wild, provider_wide, "local-thing") == 401
    one_model = _key(wild, ["openai/gpt-wild-allowed"])
    assert _status(wild, one_model, "openai/gpt-wild-allowed") == 200
    assert _status(wild, one_model, "openai/gpt-wild-other") == 401
    listed = httpx.get(f"{wild}/v1/models", headers={"Authorization": f"Bearer {provider_wide}"}).json()
    assert [m["id"] for m in listed["data"]] == ["anthropic/*"]
