"""Cross-replica invalidation of cached key principals: two ``tollgate serve`` replicas share a
SQLite file and a private Redis; an admin write on replica 1 must stop replica 2 from accepting the
key it has cached within 2 s. Without Redis, replica 2 keeps its cached principal until its TTL
(the control)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.admin_env import database, gateways, redis_server, run_tollgate, write_config
from tests.polling import wait_until

MASTER = "sk-invalidation-master"
LIMIT = 2.0
CACHE_TTL = 3  # user_api_key_cache_ttl of the replicas without Redis


def _config(db_url: str, **general: Any) -> dict[str, Any]:
    return {
        "model_list": [{"model_name": "local-fake", "litellm_params": {"model": "fake/local"}}],
        "general_settings": {"master_key": MASTER, "database_url": db_url, **general},
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


def _refused_within(url: str, key: str, seconds: float, needle: str = "") -> None:
    """``url`` refuses ``key`` with 401 (and ``needle``) within ``seconds``, serving it until then."""

    def refused() -> bool:
        response = _chat(url, key)
        if response.status_code == 401 and needle in response.text:
            return True
        assert response.status_code == 200, response.text
        return False

    wait_until(refused, timeout=seconds, interval=0.05, what=f"{url} refusing the key")


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
    _refused_within(two, key, LIMIT, "blocked")
    _admin(one, "/key/unblock", {"key": key})
    # A refusal is cached too, and must also be dropped.
    wait_until(lambda: _chat(two, key).status_code == 200, timeout=LIMIT, what="replica 2 serving it again")


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


def test_without_redis_the_other_replica_keeps_its_cache_until_its_ttl() -> None:
    with database("sqlite") as db_url:
        config = _config(db_url, user_api_key_cache_ttl=CACHE_TTL)
        with gateways(config, 2, env={"REDIS_URL": "", "REDIS_HOST": ""}) as (one, two):
            key = _admin(one, "/key/generate", {})["key"]
            assert _chat(two, key).status_code == 200
            _admin(one, "/key/block", {"key": key})
            assert _chat(one, key).status_code == 401
            assert _chat(two, key).status_code == 200  # cached: nothing tells replica 2
            _refused_within(two, key, CACHE_TTL + 5, "blocked")  # until its TTL; Redis is what fixes this
