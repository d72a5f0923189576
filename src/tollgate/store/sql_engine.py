"""The SQL engine: database URLs as LiteLLM users write them (``normalize_url``: ``postgresql://…``
gets asyncpg, ``sqlite:///…`` aiosqlite), and ``make_engine`` with its timeouts, pool and JSON codec.
Imports nothing from tollgate but ``errors``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tollgate.errors import ConfigError


def normalize_url(url: str) -> str:
    """``postgresql://`` → ``postgresql+asyncpg://``; ``sqlite:///x`` → ``sqlite+aiosqlite:///x``;
    a bare file path → an SQLite file."""
    if "://" not in url:
        return f"sqlite+aiosqlite:///{url}"
    scheme, _, rest = url.partition("://")
    base = scheme.split("+", 1)[0]
    if base in ("postgres", "postgresql"):
        parts = urlsplit(f"postgresql+asyncpg://{rest}")
        # asyncpg spells libpq's sslmode as ssl.
        query = [("ssl" if k == "sslmode" else k, v) for k, v in parse_qsl(parts.query)]
        return urlunsplit(parts._replace(query=urlencode(query)))
    if base == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    raise ConfigError(
        f"general_settings.database_url: unsupported database '{scheme}' (use sqlite or postgresql)"
    )


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    # WAL lets several workers read while one writes, and NORMAL syncs at checkpoints instead of
    # every commit: the spend log commits a batch every second.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


CONNECT_TIMEOUT = 10.0  # seconds to open one connection; a dead host fails start-up this fast


def make_engine(url: str, pool_size: int = 10, *, timeout: float | None = None) -> AsyncEngine:
    """``timeout`` (``database_connection_timeout``) bounds, on PostgreSQL, each statement, the wait
    for a pooled connection and (up to ``CONNECT_TIMEOUT``) opening one, so a stalled database
    fails calls instead of hanging them."""
    # orjson for JSON columns: the stdlib encoder was half the cost of writing a spend-log row.
    codec: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **codec)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    connect: dict[str, Any] = {"timeout": CONNECT_TIMEOUT}
    pool: dict[str, Any] = {}
    if timeout is not None:
        connect.update(timeout=min(CONNECT_TIMEOUT, timeout), command_timeout=timeout)
        pool["pool_timeout"] = timeout
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, connect_args=connect,
        **pool, **codec,
    )
