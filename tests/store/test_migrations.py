"""The schema version check that start-up relies on, without importing Alembic on the hot start."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from tollgate.errors import ConfigError
from tollgate.store.migrations import HEAD
from tollgate.store.schema import MIGRATIONS, check_schema, migrate
from tollgate.store.sql import make_engine


def test_head_constant_is_alembics_head() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD


async def test_fresh_database_is_refused_then_accepted_after_migrate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with pytest.raises(ConfigError, match="tollgate migrate"):
        await check_schema(url)
    await migrate(url)
    await check_schema(url)
    await migrate(url)  # already at head: a no-op
    await check_schema(url)


async def test_older_revision_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    await migrate(url)
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    await engine.dispose()
    with pytest.raises(ConfigError, match="tollgate migrate"):
        await check_schema(url)
