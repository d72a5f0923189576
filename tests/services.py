"""The machine's PostgreSQL and Redis, as the tests use them.

Each test that needs one asks here. When the service is not there, a developer's run skips the
test and says why; in CI (``TOLLGATE_CI=1``, set by ``.ci/run``) the test fails instead, so a CI
machine without its services cannot pass by skipping. Every database made here is dropped
afterwards; every Redis prefix handed out is deleted afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import NoReturn, TypeVar

import pytest

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/0"
CI = os.environ.get("TOLLGATE_CI", "").strip().lower() in ("1", "true", "yes")

T = TypeVar("T")


def missing(reason: str) -> NoReturn:
    """Skip the test with ``reason`` — or fail it, in CI."""
    if CI:
        pytest.fail(f"{reason} (TOLLGATE_CI=1: CI must provide it)", pytrace=False)
    pytest.skip(reason)


def _run(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()  # type: ignore[arg-type]


async def _pg_execute(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_SERVER}/postgres", timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def postgres_reachable() -> bool:
    try:
        _run(lambda: _pg_execute("SELECT 1"))
    except Exception:  # refused, timed out, asyncpg's own errors (authentication, starting up)
        return False
    return True


def require_postgres() -> None:
    if not postgres_reachable():
        missing("PostgreSQL is not reachable at 127.0.0.1:5432 as user postgres")


@contextmanager
def postgres_database(prefix: str = "tollgate_test") -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards; yields its URL."""
    require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    _run(lambda: _pg_execute(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        _run(lambda: _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def redis_reachable(url: str = REDIS_URL) -> bool:
    try:
        import redis
    except ImportError:
        return False
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
    return True


def require_redis(url: str = REDIS_URL) -> None:
    if not redis_reachable(url):
        missing(f"Redis is not reachable at {url}")


def delete_matching(*patterns: str, url: str = REDIS_URL) -> None:
    """Delete every Redis key matching one of the glob ``patterns``."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        for pattern in patterns:
            batch = list(client.scan_iter(match=pattern, count=1000))
            while batch:
                client.delete(*batch[:1000])
                batch = batch[1000:]
    finally:
        client.close()


def delete_prefix(prefix: str, url: str = REDIS_URL) -> None:
    """Delete every Redis key under ``prefix``: ``prefix…`` and the counters' hash-tagged
    ``{prefix}…`` (one Redis Cluster slot per prefix)."""
    delete_matching(f"{prefix}*", "{" + prefix + "}*", url=url)


@contextmanager
def redis_prefix(name: str = "tollgate-test") -> Iterator[str]:
    """A fresh key prefix on the machine's Redis, and every key under it deleted afterwards."""
    require_redis()
    prefix = f"{name}-{uuid.uuid4().hex[:8]}"
    try:
        yield prefix
    finally:
        delete_prefix(prefix)


@asynccontextmanager
async def async_redis_prefix(name: str = "tollgate-test") -> AsyncIterator[str]:
    """``redis_prefix`` for async tests (the deletion runs off the event loop)."""
    with redis_prefix(name) as prefix:
        yield prefix
