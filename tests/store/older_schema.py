"""A database at an older schema revision, made for real by running the migrations up to it."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from tollgate.store.schema import MIGRATIONS
from tollgate.store.sql_engine import make_engine


async def upgrade_to(url: str, revision: str) -> None:
    engine = make_engine(url)

    def run(connection: Connection) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    try:
        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()
