"""Shared loopback servers for the end-to-end tests: one fake upstream (every wire format), one
slow fake upstream, and one gateway configured in front of them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.cache_fixtures import cache_prefix, cache_replicas  # noqa: F401
from tests.e2e.conftest_native import bedrock, native_gateway, native_upstream  # noqa: F401
from tests.e2e.lifecycle_fixtures import lc_fake, lc_gw, lc_slow_fake  # noqa: F401
from tests.e2e.servers import fake_upstream, gateway

MASTER_KEY = "sk-test-master"


def openai_deployment(name: str, upstream: str, model: str, **extra: Any) -> dict[str, Any]:
    params = {"model": f"openai/{model}", "api_base": f"{upstream}/v1", "api_key": "sk-upstream-secret"}
    params.update(extra.pop("params", {}))
    return {"model_name": name, "litellm_params": params, **extra}


@pytest.fixture(scope="session")
def upstream() -> Iterator[str]:
    with fake_upstream() as url:
        yield url


@pytest.fixture(scope="session")
def slow_upstream() -> Iterator[str]:
    with fake_upstream("--latency", "2") as url:
        yield url


@pytest.fixture(scope="session")
def base_url(upstream: str, slow_upstream: str) -> Iterator[str]:
    config = {
        "model_list": [
            openai_deployment("gpt-fake", upstream, "gpt-fake"),
            openai_deployment(
                "embed-fake", upstream, "text-embedding-fake", model_info={"mode": "embedding"}
            ),
            openai_deployment("throttled", upstream, "error-429"),
            openai_deployment("broken", upstream, "error-500"),
            openai_deployment("too-long", upstream, "error-400"),
            openai_deployment("slow", slow_upstream, "slow", params={"timeout": 0.5}),
            {
                "model_name": "unreachable",
                "litellm_params": {"model": "openai/x", "api_base": "http://127.0.0.1:1/v1", "api_key": "k"},
            },
            {"model_name": "local-fake", "litellm_params": {"model": "fake/local"}},
        ],
        "general_settings": {"master_key": MASTER_KEY, "database_url": "memory"},
        "litellm_settings": {"drop_params": True},
    }
    with gateway(config) as url:
        yield url
