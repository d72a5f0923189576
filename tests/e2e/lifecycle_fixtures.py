"""Fixtures for the lifecycle end-to-end tests (test_lifecycle.py, test_operations.py): the fake
upstream (and a slow one), and a ``tollgate serve`` on a fresh PostgreSQL database with Redis
counters under a private key prefix (removed after), with no AWS credentials in its environment.
tests/e2e/conftest.py makes ``lc_fake``, ``lc_slow_fake`` and ``lc_gw`` available (one gateway per
test module)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.e2e.admin_env import postgres_database
from tests.e2e.conftest_native import TITAN_ID
from tests.e2e.routing_fixtures import Gateway, running_gateway
from tests.e2e.servers import fake_upstream
from tests.polling import wait_until
from tests.services import delete_matching, require_redis
from tollgate.fakes.sigv4 import TEST_ACCESS_KEY, TEST_SECRET_KEY

MASTER = "sk-routing-master"  # running_gateway lists models with this key
ASK = [{"role": "user", "content": "hi"}]
NO_AWS = {  # a process that must find no AWS credentials anywhere
    "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-creds",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _openai(url: str, name: str, model: str, **params: Any) -> dict[str, Any]:
    litellm = {"model": f"openai/{model}", "api_base": f"{url}/v1", "api_key": "sk-up", **params}
    return {"model_name": name, "litellm_params": litellm}


def _bedrock(url: str, name: str, model: str, creds: bool = True, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"model": f"bedrock/{model}", "api_base": url, "aws_region_name": "us-east-1"}
    if creds:
        params.update(aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY)
    return {"model_name": name, "litellm_params": params, **extra}


def lifecycle_config(fake: str, slow: str, database: str) -> dict[str, Any]:
    price = {"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002}
    return {
        "model_list": [
            {**_openai(fake, "chat", "gpt-fake"), "model_info": price},
            _openai(fake, "meta", "meta-probe"),
            _openai(fake, "cut", "stream-cut-after-3"),
            _openai(slow, "slowstream", "slowstream"),
            _openai(fake, "slowjson", "slow-3000-json", timeout=1),
            _openai(fake, "flaky", "flaky-1000-lc"),
            _openai(fake, "capped", "capped-lc", rpm=1),
            _bedrock(fake, "nova", "amazon.nova-micro-v1:0"),
            _bedrock(fake, "titan", TITAN_ID, model_info={"mode": "embedding"}),
            _bedrock(fake, "nocreds", "amazon.nova-micro-v1:0", creds=False),
            _bedrock(fake, "claude-cut-bedrock", "anthropic.claude-stream-cut-after-2"),
            {"model_name": "claude-cut", "litellm_params": {
                "model": "anthropic/claude-stream-cut-after-2", "api_base": fake, "api_key": "k"}},
            {"model_name": "claude-native",
             "litellm_params": {"model": "anthropic/claude-native-lc", "api_base": fake, "api_key": "k"}},
        ],
        "general_settings": {
            "master_key": MASTER, "database_url": database, "proxy_batch_write_at": 0.1,
            "max_request_size_mb": 1,
        },
        "router_settings": {
            "num_retries": 2, "retry_after": 0, "disable_cooldowns": True, "max_queue_wait": 120,
            "fallbacks": [{"capped": ["chat"]}], "redis_host": "127.0.0.1", "redis_port": 6379,
        },
        "litellm_settings": {"drop_params": True, "json_logs": True},
    }


@pytest.fixture(scope="module")
def lc_fake() -> Iterator[str]:
    with fake_upstream() as url:
        yield url


@pytest.fixture(scope="module")
def lc_slow_fake() -> Iterator[str]:
    with fake_upstream("--chunk-delay", "0.4") as url:
        yield url


@pytest.fixture(scope="module")
def lc_gw(lc_fake: str, lc_slow_fake: str) -> Iterator[Gateway]:
    require_redis()
    prefix = f"tollgate-lc-{uuid.uuid4().hex[:10]}"
    with postgres_database() as database:
        from tollgate.store.schema import migrate

        asyncio.run(migrate(database))
        try:
            env = {"TOLLGATE_REDIS_PREFIX": prefix, **NO_AWS}
            with running_gateway(lifecycle_config(lc_fake, lc_slow_fake, database), env=env) as gateway:
                yield gateway
        finally:
            delete_matching(f"*{prefix}*")


def admin(gw: Gateway, path: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {MASTER}"}
    answer = httpx.post(f"{gw.url}{path}", json=body, headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def new_key(gw: Gateway, **fields: Any) -> str:
    return str(admin(gw, "/key/generate", fields)["key"])


def rows(gw: Gateway, *, at_least: int = 1, **filters: str) -> list[dict[str, Any]]:
    """Spend-log rows matching ``filters``, polled until ``at_least`` are written (or 10 s)."""
    found: list[dict[str, Any]] = []

    def enough() -> bool:
        nonlocal found
        found = httpx.get(
            f"{gw.url}/spend/logs", params={**filters, "page_size": 1000},
            headers={"Authorization": f"Bearer {MASTER}"}, timeout=10,
        ).json()
        return len(found) >= at_least

    with contextlib.suppress(AssertionError):  # too few after 10 s: the caller's assertion says so
        wait_until(enough, timeout=10, what="spend rows")
    return found


def oai(gw: Gateway, key: str = MASTER, timeout: float = 30) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=f"{gw.url}/v1", max_retries=0, timeout=timeout)


def claude(gw: Gateway, key: str = MASTER) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key, base_url=gw.url, max_retries=0, timeout=30)
