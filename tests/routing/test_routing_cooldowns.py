"""DeploymentState: the in-memory twin and Redis implement the same facts; policy helpers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.services import missing
from tollgate.errors import (
    ContextWindowExceeded,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamPermissionDenied,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from tollgate.routing.cooldowns import (
    DeploymentState,
    MemoryDeploymentState,
    RedisDeploymentState,
    allowed_fails_for,
    causes_cooldown,
    litellm_error_class,
)


async def _redis_state() -> RedisDeploymentState | None:
    try:
        import redis.asyncio as aioredis
        from redis.exceptions import RedisError
    except ImportError:
        return None
    client = aioredis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5)
    try:
        await client.ping()
    except (RedisError, OSError):
        await client.aclose()
        return None
    return RedisDeploymentState(
        client, prefix=f"tollgate-test:{uuid.uuid4().hex}", errors=(RedisError, OSError)
    )


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest) -> AsyncIterator[DeploymentState]:
    if request.param == "memory":
        yield MemoryDeploymentState()
        return
    st = await _redis_state()
    if st is None:
        missing("Redis is not reachable on 127.0.0.1:6379")
    yield st
    await _drop(st)


async def _drop(st: RedisDeploymentState) -> None:
    client = st._redis
    keys = [k async for k in client.scan_iter(match=f"{st._prefix}:*")]  # type: ignore[attr-defined]
    if keys:
        await client.delete(*keys)  # type: ignore[attr-defined]
    await client.aclose()  # type: ignore[attr-defined]


async def test_in_flight_usage_and_latency(state: DeploymentState) -> None:
    await state.begin("a", 1000.0)
    await state.begin("a", 1001.0)
    await state.end("a", 1002.0, 0.5)
    await state.record_usage("a", 120, 1003.0)
    snap = await state.snapshot(["a", "b"], 1004.0, latency_ttl=60.0)
    assert (snap["a"].in_flight, snap["a"].requests, snap["a"].tokens) == (1, 2, 120)
    assert snap["a"].latency == pytest.approx(0.5)
    assert snap["b"].in_flight == 0 and snap["b"].latency is None
    # A new minute starts a fresh usage window; latency samples expire after the ttl.
    later = await state.snapshot(["a"], 1080.0, latency_ttl=10.0)
    assert (later["a"].requests, later["a"].tokens, later["a"].latency) == (0, 0, None)
    assert later["a"].in_flight == 1


async def test_cooldown_after_allowed_fails_and_expiry(state: DeploymentState) -> None:
    now = 3000.0
    for _ in range(3):
        assert await state.record_failure("a", "all", now, allowed_fails=3, cooldown_time=5.0) is False
    assert (await state.snapshot(["a"], now))["a"].cooling(now) is False
    assert await state.record_failure("a", "all", now + 1, allowed_fails=3, cooldown_time=5.0) is True
    stats = (await state.snapshot(["a"], now + 2))["a"]
    assert stats.cooldown_until == pytest.approx(now + 6)
    assert stats.cooling(now + 5.9) is True
    assert stats.cooling(now + 6.1) is False


async def test_failures_in_different_minutes_do_not_add_up(state: DeploymentState) -> None:
    for minute in range(4):
        assert await state.record_failure("a", "all", 6000.0 + 60 * minute, 1, 5.0) is False


async def test_redis_down_is_harmless() -> None:
    class Broken:
        def pipeline(self, transaction: bool = False) -> Broken:
            return self

        def __getattr__(self, name: str) -> object:
            return lambda *a, **k: None

        async def execute(self) -> list[object]:
            raise OSError("connection refused")

    st = RedisDeploymentState(Broken())
    await st.begin("a", 1.0)
    assert await st.record_failure("a", "all", 1.0, 0, 5.0) is False
    assert (await st.snapshot(["a"], 1.0))["a"].in_flight == 0


def test_error_classes_and_cooldown_rules() -> None:
    assert litellm_error_class(UpstreamRateLimited("x")) == "RateLimitError"
    assert litellm_error_class(UpstreamTimeout("x")) == "TimeoutError"
    assert litellm_error_class(UpstreamAuthError("x")) == "AuthenticationError"
    assert litellm_error_class(UpstreamBadRequest("x")) == "BadRequestError"
    assert litellm_error_class(ContextWindowExceeded("x")) == "BadRequestError"
    assert litellm_error_class(UpstreamError("x", status=500)) == "InternalServerError"
    assert causes_cooldown(UpstreamRateLimited("x")) and causes_cooldown(UpstreamError("x"))
    assert causes_cooldown(UpstreamAuthError("x"))
    assert not causes_cooldown(UpstreamBadRequest("x"))
    assert not causes_cooldown(UpstreamPermissionDenied("x"))
    assert not causes_cooldown(ContextWindowExceeded("x"))
    policy = {"RateLimitErrorAllowedFails": 100, "TimeoutErrorAllowedFails": 3}
    assert allowed_fails_for(UpstreamRateLimited("x"), 1, policy) == ("RateLimitError", 100)
    assert allowed_fails_for(UpstreamError("x"), 1, policy) == ("all", 1)
