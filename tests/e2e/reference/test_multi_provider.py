"""The examples' ``multi-provider.yaml`` served with the environment it references: several
deployments under one model name (Bedrock, Anthropic and OpenAI upstreams), Titan embeddings,
models added at run time (``store_model_in_db: true``), Redis from ``REDIS_HOST``/``REDIS_PORT``
and the internal-user budget defaults, with the Bedrock guardrail (default on, during_call, on the
fake Bedrock's ApplyGuardrail) and the Redis response cache the config also turns on."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.e2e.reference.conftest import DATABASES, Served, bearer, chat_body, load, on_loopback, served
from tests.services import redis_prefix

MASTER = "sk-multi-provider-master"
REPLY = "Hello from tollgate's fake upstream! You said: "


@pytest.fixture(scope="module", params=DATABASES)
def gw(request: pytest.FixtureRequest, upstream: str) -> Iterator[Served]:
    with redis_prefix("tollgate-reference") as prefix:
        env = {
            "LITELLM_MASTER_KEY": MASTER,
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": "6379",
            "REDIS_PASSWORD": "",
            "TOLLGATE_REDIS_PREFIX": prefix,
        }
        with served(on_loopback(load("multi-provider.yaml"), upstream), request.param, env) as gateway:
            yield gateway


def _deployments(gw: Served, group: str) -> dict[str, str]:
    info = httpx.get(f"{gw.url}/model/info", headers=bearer(MASTER), timeout=10).json()["data"]
    return {d["model_info"]["id"]: d["litellm_params"]["model"] for d in info if d["model_name"] == group}


def _served_by(gw: Served, group: str, count: int) -> Counter[str]:
    served_by: Counter[str] = Counter()
    with httpx.Client(timeout=30, headers=bearer(MASTER)) as http:
        for _ in range(count):
            text = f"question {uuid.uuid4().hex}"  # never the same prompt twice (the config caches)
            response = http.post(f"{gw.url}/v1/chat/completions", json=chat_body(group, text))
            assert response.status_code == 200, response.text
            assert response.json()["choices"][0]["message"]["content"] == REPLY + text
            served_by[response.headers["x-litellm-model-id"]] += 1
    return served_by


def test_three_providers_behind_one_model_name(gw: Served) -> None:
    deployments = _deployments(gw, "claude-3-5-sonnet-20240620-v1:0")
    assert sorted(deployments.values()) == [
        "anthropic/claude-3-5-sonnet-20240620",
        "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
        "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
    ]
    assert set(_served_by(gw, "claude-3-5-sonnet-20240620-v1:0", 30)) == set(deployments)


def test_both_gpt_4o_deployments_answer(gw: Served) -> None:
    # usage-based-routing-v2 picks the deployment with the least usage this minute; like LiteLLM,
    # it does not apply `weight` (simple-shuffle does: see test_genai_gateway.py).
    deployments = _deployments(gw, "gpt-4o")
    assert sorted(deployments.values()) == [
        "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0", "openai/gpt-4o"]
    assert set(_served_by(gw, "gpt-4o", 20)) == set(deployments)


def test_bedrock_model_id_as_model_name(gw: Served) -> None:
    assert set(_served_by(gw, "anthropic.claude-3-haiku-20240307-v1:0", 2)) == set(
        _deployments(gw, "anthropic.claude-3-haiku-20240307-v1:0"))


def test_titan_embeddings(gw: Served) -> None:
    client = openai.OpenAI(api_key=MASTER, base_url=f"{gw.url}/v1", max_retries=0)
    result = client.embeddings.create(model="titan-embed", input=["hello", "world"])
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) > 0
    assert result.data[0].embedding != result.data[1].embedding


def test_models_added_at_run_time_join_the_config_ones(gw: Served, upstream: str) -> None:
    body = {"model_name": "nova-micro", "litellm_params": {
        "model": "bedrock/converse/us.amazon.nova-micro-v1:0", "aws_region_name": "us-east-1",
        "api_base": upstream}}
    added = httpx.post(f"{gw.url}/model/new", headers=bearer(MASTER), json=body, timeout=30)
    assert added.status_code == 200, added.text
    names = {m["id"] for m in httpx.get(f"{gw.url}/v1/models", headers=bearer(MASTER)).json()["data"]}
    assert names == {"gpt-4o", "claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-haiku-20240307-v1:0",
                     "titan-embed", "nova-micro"}
    assert set(_served_by(gw, "nova-micro", 1)) == {added.json()["model_info"]["id"]}


def test_internal_users_get_the_configured_budget(gw: Served) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    created = httpx.post(f"{gw.url}/user/new", headers=bearer(MASTER), timeout=30,
                         json={"user_email": email, "user_role": "internal_user"})
    assert created.status_code == 200, created.text
    # max_internal_user_budget: 1000000000.0, internal_user_budget_duration: 1mo
    assert (created.json()["max_budget"], created.json()["budget_duration"]) == (1000000000.0, "1mo")
    reply = httpx.post(f"{gw.url}/v1/chat/completions", headers=bearer(created.json()["key"]), timeout=30,
                       json=chat_body("anthropic.claude-3-haiku-20240307-v1:0", f"hi {uuid.uuid4().hex}"))
    assert reply.status_code == 200, reply.text


def test_the_guardrail_runs_and_the_cache_answers_the_same_question(gw: Served) -> None:
    body = chat_body("gpt-4o", f"cache me {uuid.uuid4().hex}")
    with httpx.Client(timeout=30, headers=bearer(MASTER)) as http:
        first = http.post(f"{gw.url}/v1/chat/completions", json=body)
        again = http.post(f"{gw.url}/v1/chat/completions", json=body)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert first.headers["x-litellm-applied-guardrails"] == "bedrock-pre-guard"
    assert "x-litellm-cache-key" not in first.headers
    assert "x-litellm-cache-key" in again.headers
    assert again.json()["choices"][0]["message"] == first.json()["choices"][0]["message"]
