"""One response-cache store suite, run against the in-process store and Redis (127.0.0.1:6379,
fresh prefix); then what only one of them does: the in-process LRU bound and expiry on an injected
clock, Redis expiry in milliseconds, an unreachable Redis, and the store a config opens."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.e2e.servers import free_port
from tests.services import REDIS_URL, async_redis_prefix
from tollgate.config.cache import CacheParams
from tollgate.errors import ConfigError
from tollgate.store.cache import (
    CacheStore,
    CacheUnavailable,
    MemoryCacheStore,
    cache_redis_url,
    open_cache_store,
)
from tollgate.store.redis_cache import RedisCacheStore


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    async with async_redis_prefix("tollgate-cache-test") as name:
        yield name


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CacheStore]:
    if request.param == "memory":
        yield MemoryCacheStore()
        return
    async with async_redis_prefix("tollgate-cache-test") as name:
        redis_store = RedisCacheStore.from_url(REDIS_URL, prefix=name, timeout=5.0)
        yield redis_store
        await redis_store.close()


async def test_get_put_delete(store: CacheStore) -> None:
    assert await store.get_many([]) == []
    assert await store.get_many(["a", "b"]) == [None, None]
    await store.put_many([("a", b"1")], 60)
    await store.put_many([("b", b"2"), ("c", b"\x00\xff")], 60)
    assert await store.get_many(["c", "missing", "a", "b"]) == [b"\x00\xff", None, b"1", b"2"]
    await store.put_many([("a", b"new")], 60)
    assert await store.get_many(["a"]) == [b"new"]
    assert await store.delete(["a", "missing"]) == 1
    assert await store.get_many(["a", "b"]) == [None, b"2"]
    await store.ping()


async def test_redis_entries_expire_after_their_ttl(prefix: str) -> None:
    store = RedisCacheStore.from_url(REDIS_URL, prefix=prefix)
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await store.put_many([("k", b"v")], 2.5)
        assert 0 < await client.pttl(f"{prefix}:cache:k") <= 2500
    finally:
        await store.close()
        await client.aclose()


async def test_memory_entries_expire_on_the_clock() -> None:
    now = [100.0]
    store = MemoryCacheStore(clock=lambda: now[0])
    await store.put_many([("k", b"v")], 10)
    now[0] += 9.9
    assert await store.get_many(["k"]) == [b"v"]
    now[0] += 0.2
    assert await store.get_many(["k"]) == [None]


async def test_memory_is_bounded_least_recently_used_out_first() -> None:
    store = MemoryCacheStore(max_bytes=30)
    await store.put_many([("a", b"x" * 10), ("b", b"x" * 10), ("c", b"x" * 10)], 60)
    assert await store.get_many(["a"]) == [b"x" * 10]  # a is now the most recently used
    await store.put_many([("d", b"x" * 10)], 60)
    assert await store.get_many(["a", "b", "c", "d"]) == [b"x" * 10, None, b"x" * 10, b"x" * 10]
    await store.put_many([("huge", b"x" * 31)], 60)  # larger than the whole bound: not kept
    assert await store.get_many(["huge", "a"]) == [None, b"x" * 10]


async def test_an_unreachable_redis_is_cache_unavailable() -> None:
    store = RedisCacheStore.from_url(f"redis://127.0.0.1:{free_port()}/0", prefix="p", timeout=0.5)
    try:
        with pytest.raises(CacheUnavailable):
            await store.get_many(["k"])
        with pytest.raises(CacheUnavailable):
            await store.put_many([("k", b"v"), ("l", b"w")], 1)
        with pytest.raises(CacheUnavailable):
            await store.delete(["k"])
        with pytest.raises(CacheUnavailable):
            await store.ping()
    finally:
        await store.close()


def test_the_redis_url_comes_from_cache_params_else_the_router() -> None:
    assert cache_redis_url(CacheParams(url="redis://u:p@h:1/2"), "redis://fallback") == "redis://u:p@h:1/2"
    params = CacheParams(host="cache.internal", port=6380, password="p@ss", username="me", ssl=True)
    assert cache_redis_url(params, None) == "rediss://me:p%40ss@cache.internal:6380/0"
    assert cache_redis_url(CacheParams(host="h"), None) == "redis://h:6379/0"
    assert cache_redis_url(CacheParams(), "redis://router:6379/0") == "redis://router:6379/0"


async def test_the_config_picks_the_store() -> None:
    local = open_cache_store(CacheParams(type="local"), redis_fallback=None, prefix="p")
    assert isinstance(local, MemoryCacheStore)
    shared = open_cache_store(CacheParams(), redis_fallback=REDIS_URL, prefix="p")
    assert shared.kind == "redis"
    await shared.close()
    with pytest.raises(ConfigError, match="needs a Redis"):
        open_cache_store(CacheParams(type="redis"), redis_fallback=None, prefix="p")
