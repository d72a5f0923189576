"""``CacheStore``: where the response cache keeps its entries, and its in-process implementation.

Entries are opaque bytes under string keys, each with a time to live. Two implementations share
the protocol: ``MemoryCacheStore`` (``cache_params.type: local``, one process, bounded in bytes,
least recently used out first) and ``store.redis_cache.RedisCacheStore`` (shared by every replica
on the same Redis). ``open_cache_store`` picks one from the config. A store that cannot answer
raises ``CacheUnavailable``; the cache step (``tollgate.cache``) decides what that means.
May import: ``config``, ``errors``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Protocol
from urllib.parse import quote

from tollgate.config.cache import CacheParams
from tollgate.errors import ConfigError

MEMORY_BYTES = 64 * 1024 * 1024  # the local cache's bound: about 64 MiB of entries per process


class CacheUnavailable(Exception):
    """The store could not be reached (Redis down, timed out)."""


class CacheStore(Protocol):
    kind: str  # "local" | "redis", as cache_params.type says

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The entries under ``keys``, ``None`` for those missing or expired (one round trip)."""
        ...

    async def put_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None: ...

    async def delete(self, keys: Sequence[str]) -> int:
        """Remove ``keys``; how many existed."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class MemoryCacheStore:
    """One process's cache: an LRU of at most ``max_bytes`` of entries, each expiring on time."""

    kind = "local"

    def __init__(self, max_bytes: int = MEMORY_BYTES, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        now = self._clock()
        found: list[bytes | None] = []
        for key in keys:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= now:
                if entry is not None:
                    self._drop(key)
                found.append(None)
                continue
            self._entries.move_to_end(key)
            found.append(entry[1])
        return found

    async def put_many(self, items: Sequence[tuple[str, bytes]], ttl: float) -> None:
        expires = self._clock() + ttl
        for key, value in items:
            if len(value) > self._max_bytes:
                continue
            self._drop(key)
            self._entries[key] = (expires, value)
            self._bytes += len(value)
        while self._bytes > self._max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    async def delete(self, keys: Sequence[str]) -> int:
        return sum(1 for key in keys if self._drop(key))

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _drop(self, key: str) -> bool:
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self._bytes -= len(entry[1])
        return True


def cache_redis_url(params: CacheParams, fallback: str | None) -> str | None:
    """``cache_params``' own Redis (``url``, else ``host``/``port``/…), else ``fallback`` (the
    router's Redis settings or ``REDIS_URL``/``REDIS_HOST``)."""
    if params.url:
        return params.url
    if not params.host:
        return fallback
    auth = ""
    if params.password:
        user = quote(params.username, safe="") if params.username else ""
        auth = f"{user}:{quote(params.password, safe='')}@"
    scheme = "rediss" if params.ssl else "redis"
    return f"{scheme}://{auth}{params.host}:{params.port or 6379}/0"


def open_cache_store(
    params: CacheParams,
    *,
    redis_fallback: str | None,
    prefix: str,
    clock: Callable[[], float] = time.monotonic,
) -> CacheStore:
    """The store ``cache_params.type`` names. Raises ``ConfigError`` when Redis is asked for and
    none is configured anywhere."""
    if params.type == "local":
        return MemoryCacheStore(clock=clock)
    url = cache_redis_url(params, redis_fallback)
    if url is None:
        raise ConfigError(
            "litellm_settings.cache_params: type redis needs a Redis: set host (and port, password) "
            "or url there, router_settings.redis_host / redis_url, or REDIS_URL / REDIS_HOST"
        )
    from tollgate.store.redis_cache import RedisCacheStore

    return RedisCacheStore.from_url(
        url, prefix=prefix, timeout=params.socket_timeout, max_connections=params.max_connections
    )
