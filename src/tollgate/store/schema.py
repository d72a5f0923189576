"""The SQL store's schema: create it, upgrade it to the newest Alembic revision shipped in
``store/migrations`` (``migrate``), or read where a database stands (``read_revision``).

``tollgate serve`` migrates on start, as LiteLLM does, so N replicas may start together on one
new database: on PostgreSQL the upgrade runs in one transaction holding an advisory lock
(PostgreSQL DDL is transactional, so a replica that waited for the lock then sees the finished
schema and does nothing); on SQLite an exclusive ``flock`` on the database file serialises the
processes of one host (SQLite's own locks are POSIX locks, which ``flock`` does not touch).
A database at a revision this version does not know (a newer tollgate migrated it) is refused.

Failures to reach the database raise ``StoreUnavailable`` naming the database (password masked).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tollgate.errors import ConfigError, StoreUnavailable
from tollgate.store.connectivity import masked, unavailable_reason
from tollgate.store.migrations import HEAD
from tollgate.store.sql_engine import make_engine, normalize_url

MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock key: "tollgate" in ASCII, so no other application's lock collides by chance.
PG_LOCK_KEY = 0x746F6C6C67617465

log = logging.getLogger("tollgate.store")


@dataclass(frozen=True, slots=True)
class SchemaChange:
    """What ``migrate`` did: ``before`` is ``None`` for an empty database."""

    before: str | None
    after: str

    def describe(self, url: str) -> str:
        where = masked(url)
        if self.before is None:
            return f"created the schema (revision {self.after}) in {where}"
        if self.before != self.after:
            return f"upgraded the schema of {where} from revision {self.before} to {self.after}"
        return f"the schema of {where} is already at revision {self.after}; nothing to do"


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


def known_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(r.revision for r in ScriptDirectory.from_config(_alembic_config()).walk_revisions())


async def _stored_revision(conn: AsyncConnection) -> str | None:
    """The database's Alembic revision, read without Alembic; ``None`` for an empty database."""
    try:
        async with conn.begin_nested():
            result = await conn.execute(text("SELECT version_num FROM alembic_version"))
            return result.scalar()
    except DBAPIError as exc:
        if unavailable_reason(exc) is not None:
            raise
        return None


def _quiet_alembic() -> None:
    # Alembic's INFO lines ("setup plugin …") would bury serve's one-line start-up refusal.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (``None`` for other databases and ``:memory:``)."""
    normal = normalize_url(url)
    if not normal.startswith("sqlite"):
        return None
    path = normal.split(":///", 1)[-1].split("?", 1)[0]
    return None if not path or path == ":memory:" else Path(path)


def _unusable(url: str, reason: str) -> StoreUnavailable:
    detail = f"cannot use the database {masked(url)}: {reason}"
    return StoreUnavailable(detail, detail=detail)


@contextlib.asynccontextmanager
async def _engine(url: str) -> AsyncIterator[AsyncEngine]:
    """An engine for one schema operation; failures to reach the database become
    ``StoreUnavailable`` naming it."""
    path = _sqlite_path(url)
    if path is not None and not path.parent.is_dir():
        raise _unusable(url, f"directory {path.parent} does not exist")
    engine = make_engine(url, pool_size=1)
    try:
        yield engine
    except (DBAPIError, OSError, TimeoutError) as exc:
        reason = unavailable_reason(exc)
        if reason is None:
            raise
        raise _unusable(url, reason) from exc
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _sqlite_file_lock(url: str) -> AsyncIterator[None]:
    """An exclusive ``flock`` on an SQLite database file for the block (none for ``:memory:``)."""
    path = _sqlite_path(url)
    if path is None:
        yield
        return
    import fcntl

    try:
        handle = path.open("ab")  # held across awaits, closed in the finally below
    except OSError as exc:
        raise _unusable(url, (exc.strerror or str(exc)).lower()) from exc
    try:
        await asyncio.to_thread(fcntl.flock, handle.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # closing the file releases the lock


async def read_revision(url: str) -> str | None:
    """The database's schema revision (``None``: empty); ``StoreUnavailable`` if unreachable."""
    _quiet_alembic()
    async with _engine(url) as engine, engine.connect() as conn:
        return await _stored_revision(conn)


async def migrate(url: str) -> SchemaChange:
    """Bring the database at ``url`` to the newest schema (see the module docstring)."""
    _quiet_alembic()
    sqlite = normalize_url(url).startswith("sqlite")
    lock = _sqlite_file_lock(url) if sqlite else contextlib.nullcontext()
    async with lock, _engine(url) as engine, engine.begin() as conn:
        if not sqlite:
            got = await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
            if not got:
                log.info("another process is migrating %s; waiting for it", masked(url))
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_LOCK_KEY})
        before = await _stored_revision(conn)
        if before == HEAD:
            return SchemaChange(before, HEAD)
        _refuse_unknown(before, url)
        try:
            await conn.run_sync(_upgrade)
        except DBAPIError as exc:
            if unavailable_reason(exc) is not None:
                raise
            # PostgreSQL rolls the whole upgrade back; SQLite may keep the steps before this one.
            first_line = str(exc.orig or exc).splitlines()[0]
            raise ConfigError(
                f"upgrading the schema of {masked(url)} from revision {before or '(empty)'} to {HEAD} "
                f"failed: {first_line}"
            ) from exc
    return SchemaChange(before, HEAD)


def _refuse_unknown(revision: str | None, url: str) -> None:
    if revision is not None and revision not in known_revisions():
        raise ConfigError(
            f"the database {masked(url)} is at schema revision {revision}, which this tollgate does not "
            f"know (it needs {HEAD}): a newer tollgate has migrated it; run that version"
        )
