"""The schema runner: create, upgrade, refuse an unknown revision, and stay safe when several
processes migrate one database at once (PostgreSQL advisory lock, SQLite file lock)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from tests.services import postgres_database
from tests.store.older_schema import upgrade_to
from tollgate.errors import ConfigError, StoreUnavailable
from tollgate.store import prepare
from tollgate.store.migrations import HEAD
from tollgate.store.schema import MIGRATIONS, migrate, read_revision
from tollgate.store.sql_engine import make_engine


def _alembic(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def test_head_constant_is_alembics_head() -> None:
    assert ScriptDirectory.from_config(_alembic("sqlite://")).get_current_head() == HEAD


async def test_fresh_database_is_created_then_left_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    assert await read_revision(url) is None
    created = await migrate(url)
    assert (created.before, created.after) == (None, HEAD)
    assert created.describe(url) == f"created the schema (revision {HEAD}) in {url}"
    again = await migrate(url)
    assert again.describe(url) == f"the schema of {url} is already at revision {HEAD}; nothing to do"
    assert await read_revision(url) == HEAD


async def test_an_older_schema_is_upgraded(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    await upgrade_to(url, "0001")
    assert await read_revision(url) == "0001"
    change = await migrate(url)
    assert change.describe(url) == f"upgraded the schema of {url} from revision 0001 to {HEAD}"
    assert await read_revision(url) == HEAD


async def test_an_unknown_revision_is_refused_and_left_alone(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    await migrate(url)
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    await engine.dispose()
    with pytest.raises(ConfigError, match="revision from_the_future, which this tollgate does not know"):
        await migrate(url)
    assert await read_revision(url) == "from_the_future"


async def test_prepare_without_schema_updates_names_tollgate_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with pytest.raises(ConfigError, match=r"is empty, .*DISABLE_SCHEMA_UPDATE.*run `tollgate migrate`"):
        await prepare(url, update_schema=False)
    await upgrade_to(url, "0001")
    with pytest.raises(ConfigError, match=r"is at schema revision 0001, .*run `tollgate migrate`"):
        await prepare(url, update_schema=False)
    assert await read_revision(url) == "0001"  # nothing was changed
    assert "created" not in await prepare(url) and await read_revision(url) == HEAD


async def test_concurrent_migrations_on_sqlite_create_the_schema_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    changes = await asyncio.gather(*(migrate(url) for _ in range(4)))
    assert sorted(c.before is None for c in changes) == [False, False, False, True]


async def test_concurrent_migrations_on_postgresql_create_the_schema_once() -> None:
    with postgres_database() as url:
        changes = await asyncio.gather(*(migrate(url) for _ in range(4)))
        assert sorted(c.before is None for c in changes) == [False, False, False, True]
        assert await read_revision(url) == HEAD


async def test_an_older_postgresql_schema_is_upgraded_in_place() -> None:
    with postgres_database() as url:
        await upgrade_to(url, "0001")
        changes = await asyncio.gather(migrate(url), migrate(url))
        assert sorted((c.before, c.after) for c in changes) == [("0001", HEAD), (HEAD, HEAD)]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (
            "postgresql://postgres:s3cret@127.0.0.1:1/x",
            "postgresql://postgres:***@127.0.0.1:1/x: connection refused",
        ),
        (
            "postgresql://postgres@127.0.0.1:5432/tollgate_no_such_db",
            'database "tollgate_no_such_db" does not exist',
        ),
        ("postgresql://no_such_role:pw@127.0.0.1:5432/postgres", 'role "no_such_role" does not exist'),
        (
            "sqlite:////nonexistent-dir/x/db.sqlite",
            "cannot use the database sqlite:////nonexistent-dir/x/db.sqlite",
        ),
    ],
    ids=["refused", "no-database", "no-role", "sqlite-no-dir"],
)
async def test_an_unusable_database_is_one_clear_reason(url: str, reason: str) -> None:
    if url.startswith("postgresql://") and ":5432/" in url:
        with postgres_database():  # skips (or fails in CI) without a server to refuse the login
            pass
    for operation in (migrate, read_revision):
        with pytest.raises(StoreUnavailable) as info:
            await operation(url)
        assert reason in info.value.detail
        assert "s3cret" not in info.value.detail
        assert "\n" not in info.value.detail
