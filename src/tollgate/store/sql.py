"""SQL store over SQLAlchemy 2 async Core: SQLite by default, PostgreSQL when configured.

The engine (URLs as LiteLLM users write them, the async drivers, timeouts) is ``store/sql_engine.py``;
the schema itself is created and upgraded by ``store/schema.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    Dialect,
    Table,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection

from tollgate.errors import Conflict, NotFound, StoreUnavailable
from tollgate.store import AUDIT_FILTERS, GROUP_COLUMNS, Search, StoreTx
from tollgate.store.aggregate import AGGREGATED, Aggregator
from tollgate.store.connectivity import unavailable_reason
from tollgate.store.records import (
    AuditEntry,
    SpendGroup,
    SpendRow,
)
from tollgate.store.rollup_reads import rollup_groups
from tollgate.store.rollups import add_rows, rebuild
from tollgate.store.sql_engine import make_engine
from tollgate.store.sql_principals import PrincipalReads
from tollgate.store.sql_rows import (
    AUDIT,
    AUDITS,
    DEPLOYMENTS,
    KEYS,
    MEMBERSHIPS,
    ORGS,
    PLANS,
    SPEND,
    TEAMS,
    USERS,
    Mapper,
    spend_of,
    spend_row,
)
from tollgate.store.sql_spend import add_spend, add_spend_many, spend_where, sql_groups

R = TypeVar("R")
PURGE_BATCH = 5000  # spend-log rows deleted per transaction by retention


class SqlTable(Generic[R]):
    def __init__(self, conn: AsyncConnection, mapper: Mapper[R]) -> None:
        self._conn = conn
        self._m = mapper

    async def get(self, record_id: str) -> R | None:
        result = await self._conn.execute(select(self._m.table).where(self._m.where_id(record_id)))
        row = result.mappings().first()
        return None if row is None else self._m.from_row(row)

    async def insert(self, record: R) -> None:
        try:
            await self._conn.execute(insert(self._m.table).values(**self._m.to_row(record)))
        except IntegrityError:
            # The whole transaction is void after this on PostgreSQL; callers let Conflict propagate.
            name = f"{self._m.kind} '{self._m.id_of(record)}'"
            raise Conflict(f"{name} already exists (or one of its unique fields is taken)") from None

    async def replace(self, record: R) -> None:
        record_id = self._m.id_of(record)
        values = self._m.to_row(record)
        # An entity's running spend only ever grows through record_spend's atomic addition; writing
        # back the value read earlier in this transaction would undo spend recorded meanwhile.
        values.pop("spend", None)
        try:
            result = await self._conn.execute(
                update(self._m.table).where(self._m.where_id(record_id)).values(**values)
            )
        except IntegrityError:
            raise Conflict(f"{self._m.kind} '{record_id}': a unique field is already taken") from None
        if result.rowcount == 0:
            raise NotFound(f"{self._m.kind} '{record_id}' not found")

    async def delete(self, record_ids: Sequence[str]) -> list[str]:
        gone: list[str] = []
        for record_id in dict.fromkeys(record_ids):
            result = await self._conn.execute(delete(self._m.table).where(self._m.where_id(record_id)))
            if result.rowcount:
                gone.append(record_id)
        return gone

    async def find(
        self, filters: Mapping[str, str] | None = None, *, offset: int = 0, limit: int | None = None,
        search: Search | None = None,
    ) -> list[R]:
        query = self._filtered(select(self._m.table), filters, search)
        order = [self._m.table.c[c] for c in ("created_at",) if c in self._m.table.c]
        query = query.order_by(*order, *(self._m.table.c[c] for c in self._m.id_columns)).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        result = await self._conn.execute(query)
        return [self._m.from_row(row) for row in result.mappings()]

    async def count(self, filters: Mapping[str, str] | None = None, *, search: Search | None = None) -> int:
        query = self._filtered(select(func.count()).select_from(self._m.table), filters, search)
        return int((await self._conn.execute(query)).scalar_one())

    def _filtered(self, query: Any, filters: Mapping[str, str] | None, search: Search | None = None) -> Any:
        for name, value in (filters or {}).items():
            if name not in self._m.filters:
                raise ValueError(f"{self._m.kind}: unknown filter {name!r}")
            query = query.where(self._m.table.c[name] == value)
        if search is not None and search[1]:
            names, text_ = search
            for name in names:
                if name not in self._m.filters and name not in self._m.id_columns:
                    raise ValueError(f"{self._m.kind}: unknown search field {name!r}")
            escaped = text_.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            columns = [func.lower(self._m.table.c[n]) for n in names]
            query = query.where(or_(*(c.like(f"%{escaped}%", escape="\\") for c in columns)))
        return query


def _sql_tx(conn: AsyncConnection) -> StoreTx:
    return StoreTx(
        orgs=SqlTable(conn, ORGS),
        teams=SqlTable(conn, TEAMS),
        users=SqlTable(conn, USERS),
        memberships=SqlTable(conn, MEMBERSHIPS),
        keys=SqlTable(conn, KEYS),
        deployments=SqlTable(conn, DEPLOYMENTS),
        usage_plans=SqlTable(conn, PLANS),
        audit=SqlTable(conn, AUDITS),
    )


class _BulkInsert:
    """An INSERT compiled once for a dialect and fed plain tuples through the driver's
    executemany (or, on PostgreSQL, asyncpg's binary COPY of the same tuples). SQLAlchemy's
    per-row parameter handling cost several times the write itself, and the spend log writes one
    row per request."""

    def __init__(self, table: Table, dialect: Dialect) -> None:
        compiled = insert(table).compile(dialect=dialect)
        self.sql = str(compiled)
        names = list(compiled.positiontup or [c.name for c in table.columns])
        self.table = table.name
        self.columns = tuple(names)
        self.positional = compiled.positiontup is not None
        self._plan = [(n, table.c[n].type.dialect_impl(dialect).bind_processor(dialect)) for n in names]

    def params(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        plan = self._plan
        if self.positional:
            return [tuple(p(row[n]) if p else row[n] for n, p in plan) for row in rows]
        return [{n: p(row[n]) if p else row[n] for n, p in plan} for row in rows]


class SqlStore(PrincipalReads):
    def __init__(self, url: str, pool_size: int = 10, *, timeout: float | None = None) -> None:
        self.engine = make_engine(url, pool_size, timeout=timeout)
        self._spend_insert = _BulkInsert(SPEND, self.engine.dialect)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTx]:
        async with self._begin() as conn:
            yield _sql_tx(conn)

    @asynccontextmanager
    async def _begin(self) -> AsyncIterator[AsyncConnection]:
        """A transaction; ``StoreUnavailable`` when the database cannot be used now (see
        ``store/connectivity.py``). The caller's own errors pass through unchanged."""
        with _outage_as_unavailable():
            async with self.engine.begin() as conn:
                yield conn

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads; outages as in ``_begin``."""
        with _outage_as_unavailable():
            async with self.engine.connect() as conn:
                yield conn

    async def record_spend(self, rows: Sequence[SpendRow]) -> None:
        rows = list({r.request_id: r for r in rows}.values())
        if not rows:
            return
        async with self._begin() as conn:
            if conn.dialect.name == "postgresql":
                # The batch's statements find its rows by ``request_id = ANY($1)``. asyncpg prepares
                # them, and after five runs PostgreSQL may switch to a generic plan that, not knowing
                # the array, scans the whole spend log: the writer then slows as the log grows.
                await conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")
            logged = await _already_logged(conn, [r.request_id for r in rows])
            rows = [r for r in rows if r.request_id not in logged]
            if not rows:
                return
            bulk = self._spend_insert
            values = bulk.params([spend_row(r) for r in rows])
            if conn.dialect.name == "postgresql" and bulk.positional:
                # COPY: one message for the batch instead of a bind and execute per row.
                driver: Any = (await conn.get_raw_connection()).driver_connection
                await driver.copy_records_to_table(bulk.table, records=values, columns=bulk.columns)
            else:
                await conn.exec_driver_sql(bulk.sql, values)
            await conn.run_sync(add_rows, rows)
            totals: dict[tuple[int, str], Decimal] = {}
            for r in rows:
                for index, entity_id in enumerate((r.api_key, r.user_id, r.team_id, r.org_id)):
                    if entity_id and r.spend:
                        totals[(index, entity_id)] = totals.get((index, entity_id), Decimal(0)) + r.spend
            mappers: tuple[Mapper[Any], ...] = (KEYS, USERS, TEAMS, ORGS)
            if conn.dialect.name == "postgresql":
                for index, mapper in enumerate(mappers):
                    amounts = sorted((e, a) for (i, e), a in totals.items() if i == index)
                    if amounts:
                        await add_spend_many(conn, mapper, amounts)
                return
            for (index, entity_id), amount in totals.items():
                await add_spend(conn, mappers[index], entity_id, amount)

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
        query = spend_where(select(SPEND), filters, start, end)
        if after is not None:
            at, request_id = after
            # The plain bound lets the (…, started_at) index start the scan at the cursor.
            later = and_(SPEND.c.started_at == at, SPEND.c.request_id > request_id)
            query = query.where(SPEND.c.started_at <= at, or_(SPEND.c.started_at < at, later))
        query = query.order_by(SPEND.c.started_at.desc(), SPEND.c.request_id).offset(offset).limit(limit)
        async with self._connect() as conn:
            result = await conn.execute(query)
            return [spend_of(row) for row in result.mappings()]

    async def spend_groups(
        self,
        group_by: str | None,
        *,
        by_day: bool = False,
        filters: Mapping[str, str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[SpendGroup]:
        column = GROUP_COLUMNS[group_by] if group_by else None
        async with self._connect() as conn:
            rolled = await rollup_groups(conn, column, by_day, filters, start, end)
            if rolled is not None:
                return rolled
            if conn.dialect.name != "sqlite":
                return await sql_groups(conn, column, by_day, filters, start, end)
            cols = [SPEND.c[c] for c in AGGREGATED] + ([SPEND.c[column]] if column else [])
            query = spend_where(select(*cols), filters, start, end)
            aggregator = Aggregator(column, by_day)
            async for row in (await conn.stream(query)).mappings():
                aggregator.add(row)
            return aggregator.groups

    async def purge_spend_logs(self, before: datetime) -> int:
        """In batches of ``PURGE_BATCH`` rows, each its own short transaction, so writers never
        wait long for the table; the rollups are left alone (they keep the totals)."""
        purged = 0
        oldest = select(SPEND.c.request_id).where(SPEND.c.started_at < before)
        while True:
            async with self._begin() as conn:
                batch = oldest.order_by(SPEND.c.started_at).limit(PURGE_BATCH).scalar_subquery()
                result = await conn.execute(delete(SPEND).where(SPEND.c.request_id.in_(batch)))
                deleted = int(result.rowcount or 0)
            purged += deleted
            if deleted < PURGE_BATCH:
                return purged

    async def rebuild_rollups(self) -> int:
        """Recompute the spend rollups from the spend log (``store/rollups.py``); rollup rows written."""
        async with self._begin() as conn:
            return await conn.run_sync(rebuild)

    async def audit_logs(
        self,
        filters: Mapping[str, str] | None = None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        query = select(AUDIT)
        for name, value in (filters or {}).items():
            if name not in AUDIT_FILTERS:
                raise ValueError(f"audit logs: unknown filter {name!r}")
            query = query.where(AUDIT.c[name] == value)
        if start is not None:
            query = query.where(AUDIT.c.created_at >= start)
        if end is not None:
            query = query.where(AUDIT.c.created_at < end)
        query = query.order_by(AUDIT.c.created_at.desc(), AUDIT.c.id).offset(offset).limit(limit)
        async with self._connect() as conn:
            return [AUDITS.from_row(row) for row in (await conn.execute(query)).mappings()]

    async def close(self) -> None:
        await self.engine.dispose()


@contextmanager
def _outage_as_unavailable() -> Iterator[None]:
    try:
        yield
    except (DBAPIError, OSError, TimeoutError, PoolTimeout) as exc:
        reason = unavailable_reason(exc)
        if reason is None:
            raise
        raise StoreUnavailable("the database is unavailable; retry shortly", detail=reason) from exc


_LOGGED_PG = text(f"SELECT request_id FROM {SPEND.name} WHERE request_id = ANY(:ids)")


async def _already_logged(conn: AsyncConnection, ids: list[str]) -> set[str]:
    """The ids of a batch already in the spend log (a batch retried after a lost commit). On
    PostgreSQL one array parameter keeps the statement's text constant, so it is prepared once;
    an ``IN`` list of a batch's length was a new statement to parse and plan every batch (most
    of the database's time under load)."""
    if conn.dialect.name == "postgresql":
        seen = await conn.execute(_LOGGED_PG, {"ids": ids})
    else:
        seen = await conn.execute(select(SPEND.c.request_id).where(SPEND.c.request_id.in_(ids)))
    return set(seen.scalars())
