"""The SQL store's schema: upgrade a database to the newest Alembic revision shipped in
``store/migrations`` (``migrate``), or refuse to serve one that is behind (``check_schema``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from tollgate.errors import ConfigError
from tollgate.store.migrations import HEAD
from tollgate.store.sql import make_engine

MIGRATIONS = Path(__file__).with_name("migrations")
SCHEMA_BEHIND = "database schema is not at the current version; run `tollgate migrate`"


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), "head")


async def _stored_revision(conn: AsyncConnection) -> str | None:
    """The database's Alembic revision, read without Alembic; ``None`` for an empty database."""
    try:
        async with conn.begin_nested():
            result = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return result.scalar()
    except DBAPIError:
        return None


def _quiet_alembic() -> None:
    # Alembic's INFO lines ("setup plugin …") would bury serve's one-line start-up refusal.
    logging.getLogger("alembic").setLevel(logging.WARNING)


async def migrate(url: str) -> None:
    """Upgrade the database at ``url`` to the newest schema (creates an SQLite file if needed)."""
    _quiet_alembic()
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            if await _stored_revision(conn) != HEAD:
                await conn.run_sync(_upgrade)
    finally:
        await engine.dispose()


async def check_schema(url: str) -> None:
    """Raise ``ConfigError`` unless the database is at the newest schema revision."""
    _quiet_alembic()
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            current = await _stored_revision(conn)
    finally:
        await engine.dispose()
    if current != HEAD:
        raise ConfigError(SCHEMA_BEHIND)
