"""Gateways for the response-cache tests: two ``tollgate serve`` replicas caching in one real Redis
(one finds it in ``cache_params``, the other in ``router_settings``) over one database, in front of
the fake upstream on loopback (which counts the calls it answers). Redis keys get a per-run prefix
and are deleted afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.servers import gateway
from tests.polling import wait_until
from tests.services import redis_prefix

REDIS = ("127.0.0.1", 6379)
MASTER = "sk-cache-master"
ADMIN = {"Authorization": f"Bearer {MASTER}"}
IN_PRICE, OUT_PRICE = Decimal("0.000001"), Decimal("0.000002")
PRICES = {"input_cost_per_token": float(IN_PRICE), "output_cost_per_token": float(OUT_PRICE)}


def model_list(upstream: str) -> list[dict[str, Any]]:
    def openai(name: str, model: str, **info: Any) -> dict[str, Any]:
        params = {"model": f"openai/{model}", "api_base": f"{upstream}/v1", "api_key": "sk-upstream"}
        return {"model_name": name, "litellm_params": params, "model_info": {**PRICES, **info}}

    return [
        openai("gpt-cache", "gpt-cache"),
        openai("gpt-drop", "stream-drop-after-3"),
        openai("gpt-fail", "stream-error-after-2"),
        openai("embed-cache", "text-embedding-cache", mode="embedding"),
    ]


def cache_config(
    upstream: str, database_url: str, cache_params: dict[str, Any], **sections: Any
) -> dict[str, Any]:
    return {
        "model_list": model_list(upstream),
        "router_settings": {"model_group_alias": {"gpt-alias": "gpt-cache"}, **sections.get("router", {})},
        "general_settings": {"master_key": MASTER, "database_url": database_url, "proxy_batch_write_at": 0.1},
        "litellm_settings": {"cache": True, "cache_params": cache_params},
    }


@pytest.fixture(scope="session")
def cache_prefix() -> Iterator[str]:
    """A key prefix on the machine's Redis (missing Redis: skipped, or failed in CI), emptied after."""
    with redis_prefix("tollgate-cache-e2e") as prefix:
        yield prefix


@pytest.fixture(scope="session")
def cache_replicas(upstream: str, cache_prefix: str) -> Iterator[tuple[str, str]]:
    from tests.e2e.test_replicas import shared_database  # a test module: imported once collected

    env = {"TOLLGATE_REDIS_PREFIX": cache_prefix}
    with shared_database() as db:
        # "Redis" as AWS's guide writes it; the host and port from cache_params.
        first = cache_config(upstream, db, {"type": "Redis", "host": REDIS[0], "port": REDIS[1]})
        # No host in cache_params: the router's Redis settings are used.
        second = cache_config(
            upstream, db, {"type": "redis"}, router={"redis_host": REDIS[0], "redis_port": REDIS[1]}
        )
        with gateway(first, env=env) as one, gateway(second, env=env) as two:
            yield one, two


def admin(base: str, path: str, body: dict[str, Any] | None = None) -> Any:
    if body is None:
        resp = httpx.get(f"{base}{path}", headers=ADMIN, timeout=10)
    else:
        resp = httpx.post(f"{base}{path}", json=body, headers=ADMIN, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def new_key(base: str, **fields: Any) -> str:
    key: str = admin(base, "/key/generate", fields)["key"]
    return key


def spend_row(base: str, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The spend-log row of ``request_id``, once the batched writer has stored it."""

    def rows() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = httpx.get(
            f"{base}/spend/logs", params={"request_id": request_id}, headers=ADMIN, timeout=5
        ).json()
        return found

    return wait_until(rows, timeout=timeout, what=f"the spend row of {request_id}")[0]


def metric(base: str, name: str, master: str = MASTER, **labels: str) -> float:
    """The value of one Prometheus series on ``base``'s /metrics (0 when absent)."""
    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {master}"}, timeout=5).text
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        series, value = line.rsplit(" ", 1)
        found = ",".join(sorted(series[len(name) + 1 : -1].split(",")))
        if found == wanted:
            return float(value)
    return 0.0
