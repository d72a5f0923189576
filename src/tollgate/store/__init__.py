"""Store protocols: the persistence the admin services, authentication and accounting rely on.

A ``Store`` hands out transactions; a transaction (``StoreTx``) exposes one ``RecordTable`` per
record kind. Everything done inside ``async with store.transaction() as tx:`` commits together or
not at all, so an admin operation that writes a user and its first key never leaves one without
the other. ``sql.SqlStore`` (SQLite, PostgreSQL) and ``memory.MemoryStore`` implement them; the
URL given in ``general_settings.database_url`` picks one (``open_store``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol, TypeVar

from tollgate.config import Config
from tollgate.errors import ConfigError
from tollgate.store.records import (
    AuditEntry,
    KeyChain,
    Membership,
    Organization,
    SpendGroup,
    SpendQuery,
    SpendRow,
    StoredDeployment,
    Team,
    UsagePlan,
    User,
    VirtualKey,
)

R = TypeVar("R")
Search = tuple[tuple[str, ...], str]

__all__ = [
    "AUDIT_FILTERS", "DEFAULT_DATABASE_URL", "GROUP_COLUMNS", "SPEND_FILTERS", "AuditStore", "PrincipalStore",
    "RecordTable", "Search", "SpendStore", "Store", "StoreTx", "database_url", "open_store", "prepare",
]

SPEND_FILTERS = (
    "api_key", "user_id", "team_id", "org_id", "model_group", "request_id", "key_alias", "status",
)
# "status" is "success" (status code < 400) or "failure"; the others compare a column for equality.
AUDIT_FILTERS = ("action", "target_id", "actor_user_id", "actor_key")
# group_by name → spend-log column
GROUP_COLUMNS = {
    "key": "api_key", "api_key": "api_key", "user": "user_id", "team": "team_id", "org": "org_id",
    "model": "model_group", "deployment": "deployment_id", "provider_model": "provider_model",
}

# Where tollgate keeps its tables when general_settings.database_url is not set.
DEFAULT_DATABASE_URL = "sqlite:///tollgate.db"


def database_url(config: Config, env: Mapping[str, str]) -> str:
    """``general_settings.database_url``, else ``DATABASE_URL``, else a SQLite file beside the
    config file (in the working directory for the embedded config). ``memory`` keeps no state."""
    url = config.general.database_url or env.get("DATABASE_URL")
    if url:
        return url
    if config.path:
        return f"sqlite:///{Path(config.path).resolve().parent / 'tollgate.db'}"
    return DEFAULT_DATABASE_URL


async def prepare(url: str, *, update_schema: bool = True) -> str:
    """Before serving: bring the database's schema to this version's (``store/schema.py``: safe
    with N replicas starting together) and say what was done. With ``update_schema`` off
    (``DISABLE_SCHEMA_UPDATE``), a database not at this version's schema is refused with
    ``ConfigError`` naming ``tollgate migrate``. Unreachable databases raise ``StoreUnavailable``."""
    from tollgate.store.connectivity import masked
    from tollgate.store.migrations import HEAD
    from tollgate.store.schema import migrate, read_revision

    if update_schema:
        return (await migrate(url)).describe(url)
    revision = await read_revision(url)
    if revision != HEAD:
        state = "empty" if revision is None else f"at schema revision {revision}"
        raise ConfigError(
            f"the database {masked(url)} is {state}, this tollgate needs revision {HEAD}, and schema "
            "updates on start are disabled (DISABLE_SCHEMA_UPDATE / disable_prisma_schema_update): "
            "run `tollgate migrate`"
        )
    return f"the schema of {masked(url)} is at revision {HEAD}"


class RecordTable(Protocol[R]):
    """Rows of one record kind. ``filters`` compare named fields for equality.

    Filter names per kind — keys: user_id, team_id, org_id, key_alias; users: email, org_id, role;
    teams: org_id, alias; orgs: alias; memberships: team_id, user_id; deployments: model_name;
    usage_plans: entity_type, entity_id.

    ``search`` is ``(field names, text)``: keep records where any of those fields (filter names, or
    ``id``) contains the text, ignoring case (the UI's search boxes).
    """

    async def get(self, record_id: str) -> R | None: ...

    async def insert(self, record: R) -> None:
        """Add a record; ``errors.Conflict`` if its id (or a unique field) is taken."""

    async def replace(self, record: R) -> None:
        """Overwrite the record with the same id; ``errors.NotFound`` if there is none."""

    async def delete(self, record_ids: Sequence[str]) -> list[str]:
        """Remove records; returns the ids that existed."""

    async def find(
        self, filters: Mapping[str, str] | None = None, *, offset: int = 0, limit: int | None = None,
        search: Search | None = None,
    ) -> list[R]:
        """Records matching every filter, oldest first."""

    async def count(
        self, filters: Mapping[str, str] | None = None, *, search: Search | None = None
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class StoreTx:
    """The record tables one transaction sees; each store fills it with its own table kind."""

    orgs: RecordTable[Organization]
    teams: RecordTable[Team]
    users: RecordTable[User]
    memberships: RecordTable[Membership]
    keys: RecordTable[VirtualKey]
    deployments: RecordTable[StoredDeployment]
    usage_plans: RecordTable[UsagePlan]
    # Admin writes add their audit entry here, so the entry commits (or not) with the write.
    audit: RecordTable[AuditEntry]


class SpendStore(Protocol):
    async def record_spend(self, rows: Sequence[SpendRow]) -> None:
        """Append spend-log rows and add their spend to the key, user, team and org totals.

        Idempotent per ``request_id``: a row whose request id is already logged is skipped (and
        not counted again), so replaying a spill file after a crash never double-counts."""

    async def spend_logs(
        self,
        filters: Mapping[str, str] | None = None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        after: tuple[datetime, str] | None = None,
    ) -> list[SpendRow]:
        """Newest first (ties by request id); filters: ``SPEND_FILTERS``; ``start`` inclusive,
        ``end`` exclusive. ``after`` (a keyset page): only rows after the row with this
        (``started_at``, ``request_id``) in that order, so deep pages cost what the first does."""

    async def spend_groups(
        self,
        group_by: str | None,
        *,
        by_day: bool = False,
        filters: Mapping[str, str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[SpendGroup]:
        """Totals per ``GROUP_COLUMNS[group_by]`` value (``None``: one group), per UTC day if
        ``by_day``; ordered by day, then spend descending, then group (``aggregate.ordered``)."""

    async def purge_spend_logs(self, before: datetime) -> int:
        """Delete spend-log rows that started before ``before``; returns how many."""

    async def spend_of_record(self, queries: Sequence[SpendQuery]) -> list[Decimal]:
        """Each query's total, in one round trip where the database allows: a lifetime total is the
        entity's ``spend`` column (one primary-key read), a window the sum of its spend-log rows by
        an index on (entity column, ``started_at``). Budget counters are rebuilt from these."""


class AuditStore(Protocol):
    """Audit entries are written inside admin transactions (``StoreTx.audit``); this reads them."""

    async def audit_logs(
        self,
        filters: Mapping[str, str] | None = None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Newest first; filters: ``AUDIT_FILTERS``."""


class PrincipalStore(Protocol):
    async def key_chain(self, token: str) -> KeyChain | None:
        """The key whose hash is ``token`` with its user, team and organisation: one indexed read."""


class Store(SpendStore, AuditStore, PrincipalStore, Protocol):
    def transaction(self) -> AbstractAsyncContextManager[StoreTx]: ...

    async def close(self) -> None: ...


def open_store(url: str | None, pool_size: int = 10, *, timeout: float | None = None) -> Store:
    """``memory`` (or ``None``) → in-memory; ``sqlite…``/``postgres…`` → SQL (see
    ``sql_engine.normalize_url``). ``timeout``: ``general_settings.database_connection_timeout``
    (see ``sql_engine.make_engine``)."""
    if url is None or url == "memory":
        from tollgate.store.memory import MemoryStore

        return MemoryStore()
    from tollgate.store.sql import SqlStore

    return SqlStore(url, pool_size=pool_size, timeout=timeout)
