"""``RedisCacheStore``: the response cache on Redis, shared by every replica that uses it.

An entry is one string key ``{prefix}:cache:{key}`` with a millisecond expiry (``SET … PX``).
A lookup of several keys (embedding inputs) is one ``MGET``; storing several is one pipeline.
Keys carry no hash tag, so a Redis Cluster spreads them over its shards. Any Redis or socket
error becomes ``CacheUnavailable``.
May import: ``store.cache``.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tollgate.store.cache import CacheUnavailable

_FAILURES = (RedisError, OSError, TimeoutError)


class RedisCacheStore:
    kind = "redis"

    def __init__(self, client: aioredis.Redis, *, prefix: str) -> None:
        self._client = client
        self._prefix = f"{prefix}:cache:"

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str, timeout: float = 0.5, max_connections: int | None = None
    ) -> RedisCacheStore:
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, max_connections=max_connections
        )
        return cls(client, prefix=prefix)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            values = await self._client.mget([self._prefix + key for key in keys])
        except _FAILURES as exc:
            raise CacheUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return [value if isinstance(value, bytes) else None for value in values]

    async def put_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        if not items:
            return
        expiry = max(1, int(ttl * 1000))
        try:
            if len(items) == 1:
                key, value = items[0]
                await self._client.set(self._prefix + key, value, px=expiry)
                return
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value in items:
                    pipe.set(self._prefix + key, value, px=expiry)
                await pipe.execute()
        except _FAILURES as exc:
            raise CacheUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def delete(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        try:
            return int(await self._client.delete(*(self._prefix + key for key in keys)))
        except _FAILURES as exc:
            raise CacheUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def ping(self) -> None:
        try:
            await self._client.ping()
        except _FAILURES as exc:
            raise CacheUnavailable(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        await self._client.aclose()
