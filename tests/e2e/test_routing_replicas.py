"""Routing state shared by gateway processes: two replicas on one Redis see the same cooldowns.
(Routing and resilience within one gateway is tested in-process: tests/routing/test_resilience.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.routing_fixtures import FORMATS, TIMEOUT, ask, config, deployment, fake_calls, running_gateway
from tests.e2e.servers import fake_upstream
from tests.services import delete_matching, require_redis

COMBOS = [(fmt, stream) for fmt in FORMATS for stream in (False, True)]


@pytest.fixture(scope="module")
def fake() -> Iterator[str]:
    with fake_upstream() as url:
        yield url


def test_cooldown_is_shared_by_replicas_through_redis(fake: str) -> None:
    require_redis()
    run = uuid.uuid4().hex[:8]  # routing keys have a fixed prefix; fresh ids keep runs apart
    bad, good = f"rd-bad-{run}", f"rd-good-{run}"
    model = f"error-500-rd-{run}"
    deps = [deployment("rd", bad, fake, model), deployment("rd", good, fake, f"rd-good-{run}")]
    redis_at = {"redis_host": "127.0.0.1", "redis_port": 6379}
    cfg = config(deps, num_retries=0, allowed_fails=0, cooldown_time=3, **redis_at)
    try:
        _cooldown_shared(fake, cfg, model, good)
    finally:
        delete_matching(f"tollgate:routing:*-{run}*")  # the routing keys' fixed prefix


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

