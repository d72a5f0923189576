"""``auth.invalidation``: local-only without Redis, harmless when Redis is unreachable, and across
two instances on a private ``redis-server`` an invalidation reaches the other's local cache."""

from __future__ import annotations

import asyncio

from tests.e2e.admin_env import redis_server
from tests.e2e.servers import free_port
from tests.polling import until
from tollgate.auth.invalidation import ALL, Invalidation, redis_invalidation


class Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def invalidate(self, key_hash: str) -> None:
        self.calls.append(key_hash)

    def invalidate_all(self) -> None:
        self.calls.append(ALL)


def test_without_redis_only_the_local_cache_is_dropped() -> None:
    local = Recorder()
    cache = redis_invalidation(local, None)

    async def main() -> None:
        await cache.start()
        cache.invalidate("abc")
        cache.invalidate_all()
        await cache.stop()

    asyncio.run(main())
    assert not cache.enabled
    assert local.calls == ["abc", ALL]


def test_outside_an_event_loop_the_local_cache_is_still_dropped() -> None:
    local = Recorder()
    cache = redis_invalidation(local, f"redis://127.0.0.1:{free_port()}/0")
    cache.invalidate("abc")  # e.g. the CLI: nothing to publish on, and no error
    assert local.calls == ["abc"]


def test_unreachable_redis_never_fails_the_write() -> None:
    local, warnings = Recorder(), list[str]()
    import redis.asyncio
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    client = redis.asyncio.Redis(port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    cache = Invalidation(local, client, errors=(OSError, redis.RedisError), warn=warnings.append)

    async def main() -> None:
        await cache.start()
        cache.invalidate("abc")
        await until(
            lambda: any("could not publish" in w for w in warnings)
            and any("subscriber lost Redis" in w for w in warnings),
            what="both failures reported",
        )
        await cache.stop()

    asyncio.run(main())
    assert local.calls == ["abc"]
    assert any("could not publish" in w for w in warnings)
    assert any("subscriber lost Redis" in w for w in warnings)


def test_an_invalidation_reaches_the_other_instance() -> None:
    with redis_server() as url:
        async def main() -> tuple[list[str], list[str]]:
            local_one, local_two = Recorder(), Recorder()
            one, two = redis_invalidation(local_one, url), redis_invalidation(local_two, url)
            await one.start()
            await two.start()
            assert await two.wait_subscribed(5)
            one.invalidate("deadbeef")
            one.invalidate_all()
            await until(lambda: len(local_two.calls) >= 2, what="both messages delivered")
            await one.stop()
            await two.stop()
            return local_one.calls, local_two.calls

        calls_one, calls_two = asyncio.run(main())
    # Publishes run concurrently, so they may arrive in either order: drops commute.
    assert sorted(calls_two) == sorted(["deadbeef", ALL])
    assert calls_one[:2] == ["deadbeef", ALL]  # its own messages may come back too: harmless
