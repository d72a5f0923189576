"""The store fixture shared by the store suites: every test runs against the in-memory store,
a temporary SQLite file and a fresh PostgreSQL database on the machine's server (dropped after;
skipped with the reason when the server is unreachable)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.services import missing
from tollgate.store import Store, open_store
from tollgate.store.schema import migrate

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _pg_database() -> str | None:
    try:
        import asyncpg

        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres", timeout=3)
    except Exception:
        return None
    name = f"tollgate_test_{secrets.token_hex(6)}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return name


async def _pg_drop(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres", timeout=3)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "memory":
        yield open_store("memory")
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/tollgate.db"
        await migrate(url)
        s = open_store(url)
        yield s
        await s.close()
        return
    name = await _pg_database()
    if name is None:
        missing("PostgreSQL is not reachable at 127.0.0.1:5432 as user postgres")
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        await migrate(url)
        s = open_store(url, pool_size=2)
        yield s
        await s.close()
    finally:
        await _pg_drop(name)
