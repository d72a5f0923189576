"""Routing state shared by gateway processes: two replicas on one Redis see the same cooldowns.
(Routing and resilience within one gateway is tested in-process: tests/routing/test_resilience.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.e2e.routing_fixtures import FORMATS, TIMEOUT, ask, config, deployment, fake_calls, running_gateway
from tests.e2e.servers import fake_upstream
from tests.services import missing

COMBOS = [(fmt, stream) for fmt in FORMATS for stream in (False, True)]


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with fake_upstream() as url:
        yield url


def _redis_up() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def test_cooldown_is_shared_by_replicas_through_redis(fake: str) -> None:
    if not _redis_up():
        missing("no Redis on 127.0.0.1:6379")
    run = uuid.uuid4().hex[:8]  # routing keys have a fixed prefix; fresh ids keep runs apart
    bad, good = f"rd-bad-{run}", f"rd-good-{run}"
    model = f"error-500-rd-{run}"
    deps = [deployment("rd", bad, fake, model), deployment("rd", good, fake, f"rd-good-{run}")]
    redis_at = {"redis_host": "127.0.0.1", "redis_port": 6379}
    cfg = config(deps, num_retries=0, allowed_fails=0, cooldown_time=3, **redis_at)
    try:
        _cooldown_shared(fake, cfg, model, good)
    finally:
        _drop_routing_keys(run)


def _cooldown_shared(fake: str, cfg: dict[str, Any], model: str, good: str) -> None:
    with httpx.Client(timeout=TIMEOUT) as client, running_gateway(cfg) as one, running_gateway(cfg) as two:
        for _ in range(30):  # allowed_fails: 0 → the first failure cools the deployment down
            ask(client, one.url, "openai", "rd")
            if fake_calls(fake).get(model):
                break
        assert fake_calls(fake).get(model) == 1
        for i in range(10):
            fmt, stream = COMBOS[i % len(COMBOS)]
            reply = ask(client, two.url, fmt, "rd", stream=stream)
            assert (reply.status, reply.deployment) == (200, good), reply.body
        assert fake_calls(fake).get(model) == 1


def _drop_routing_keys(run: str) -> None:
    """The routing state of this run's deployments (under the routing keys' fixed prefix)."""
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"tollgate:routing:*-{run}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
