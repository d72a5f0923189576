"""Cross-replica invalidation of cached key principals: two ``tollgate serve`` replicas share a
SQLite file and a private Redis; an admin write on replica 1 must stop replica 2 from accepting the
key it has cached within 2 s. Without Redis, replica 2 keeps its cached principal (the control)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.admin_env import database, gateways, redis_server, run_tollgate, write_config

MASTER = "sk-invalidation-master"
LIMIT = 2.0


def _config(db_url: str) -> dict[str, Any]:
    return {
        "model_list": [{"model_name": "local-fake", "litellm_params": {"model": "fake/local"}}],
        "general_settings": {"master_key": MASTER, "database_url": db_url},
    }


def _migrate(db_url: str) -> None:
    path = write_config(_config(db_url))
    try:
        result = run_tollgate(["migrate", "--config", str(path)])
    finally:
        path.unlink()
    assert result.returncode == 0, result.stderr


def _admin(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {MASTER}"}
    response = httpx.post(f"{url}{path}", json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _chat(url: str, key: str) -> httpx.Response:
    body = {"model": "local-fake", "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"},
                      timeout=10)


def _refused_within(url: str, key: str, seconds: float, needle: str = "") -> float:
    """Seconds until ``url`` refuses ``key`` with 401; fails after ``seconds``."""
    start = time.monotonic()
    while True:
        response = _chat(url, key)
        if response.status_code == 401 and needle in response.text:
            return time.monotonic() - start
        assert response.status_code == 200, response.text
        assert time.monotonic() - start < seconds, f"{url} still accepts the key after {seconds}s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def replicas() -> Iterator[tuple[str, str]]:
    with redis_server() as redis_url, database("sqlite") as db_url:
        _migrate(db_url)
        with gateways(_config(db_url), 2, env={"REDIS_URL": redis_url}) as (one, two):
            yield one, two


def test_block_on_one_replica_refuses_on_the_other(replicas: tuple[str, str]) -> None:
    one, two = replicas
    key = _admin(one, "/key/generate", {})["key"]
    assert _chat(two, key).status_code == 200  # cached on replica 2
    _admin(one, "/key/block", {"key": key})
    assert _refused_within(two, key, LIMIT, "blocked") < LIMIT
    _admin(one, "/key/unblock", {"key": key})
    deadline = time.monotonic() + LIMIT
    while _chat(two, key).status_code != 200:  # a refusal is cached too, and must also be dropped
        assert time.monotonic() < deadline, "replica 2 still refuses the unblocked key"
        time.sleep(0.05)


def test_update_regenerate_delete_reach_the_other_replica(replicas: tuple[str, str]) -> None:
    one, two = replicas
    key = _admin(one, "/key/generate", {})["key"]
    assert _chat(two, key).status_code == 200
    _admin(one, "/key/update", {"key": key, "models": ["some-other-model"]})
    _refused_within(two, key, LIMIT, "some-other-model")
    _admin(one, "/key/update", {"key": key, "models": []})
    new = _admin(one, "/key/regenerate", {"key": key})["key"]
    _refused_within(two, key, LIMIT)
    assert _chat(two, new).status_code == 200
    _admin(one, "/key/delete", {"keys": [new]})
    _refused_within(two, new, LIMIT)


def test_without_redis_the_other_replica_keeps_its_cache() -> None:
    with database("sqlite") as db_url:
        _migrate(db_url)
        with gateways(_config(db_url), 2, env={"REDIS_URL": "", "REDIS_HOST": ""}) as (one, two):
            key = _admin(one, "/key/generate", {})["key"]
            assert _chat(two, key).status_code == 200
            _admin(one, "/key/block", {"key": key})
            assert _chat(one, key).status_code == 401
            time.sleep(LIMIT)
            assert _chat(two, key).status_code == 200  # cached until its TTL: Redis is what fixes this
