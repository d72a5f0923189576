"""Spend totals read from the rollups (``rollup_tables``) instead of the spend log.

``rollup_groups`` answers ``SpendStore.spend_groups`` when the rollups hold the answer: every
filter names an entity dimension (key, user, team, org, model: not ``status``, ``request_id`` or
``key_alias``), the grouping is one of them (or none), and the time bounds fall on whole days
(or whole hours, for the views kept hourly). It reads the smallest view that has every dimension
asked for: one dimension's own view, else the daily cube. Anything else returns ``None`` and the
store sums the spend log as before. (Budget windows of any shape are read in
``sql_principals.spend_of_record``: whole hours from the hourly rollup, the ends from the log.)
Imports only ``store.records``, ``store.aggregate`` and the table modules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Table, cast, func, null, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tollgate.store.aggregate import day_of, ordered
from tollgate.store.collector import collector_paused
from tollgate.store.records import SpendGroup
from tollgate.store.rollup_tables import DAILY, ENTITY_DIMENSIONS, HOURLY, HOURLY_VIEWS, MEASURES, VIEWS
from tollgate.store.sql_tables import T

_SINGLE = {dims[0]: view for view, dims in VIEWS.items() if len(dims) == 1}


def _aligned(moment: datetime | None, unit: str) -> bool:
    if moment is None:
        return True
    moment = moment.astimezone(UTC)
    if moment.minute or moment.second or moment.microsecond:
        return False
    return unit == "hour" or moment.hour == 0


def choose(
    column: str | None, filters: Mapping[str, str], start: datetime | None, end: datetime | None
) -> tuple[Table, str] | None:
    """(the rollup table, the view) that answers this question, or ``None``."""
    if column is not None and column not in ENTITY_DIMENSIONS and column != "tag":
        return None
    if any(name not in ENTITY_DIMENSIONS or not value for name, value in filters.items()):
        return None
    needed = set(filters) | ({column} if column else set())
    if not needed:
        view = "all"
    elif len(needed) == 1:
        view = _SINGLE[next(iter(needed))]
    elif "tag" in needed:
        return None
    else:
        view = "cube"
    if _aligned(start, "day") and _aligned(end, "day"):
        return T[DAILY], view
    if view in HOURLY_VIEWS and _aligned(start, "hour") and _aligned(end, "hour"):
        return T[HOURLY], view
    return None


# SpendGroup's fields after group and day, in its order.
_SUMS = ("spend", "requests", "prompt_tokens", "completion_tokens", "failed_requests",
         "cache_read_tokens", "cache_write_tokens", "cache_hits")


def _where(
    table: Table, view: str, filters: Mapping[str, str], start: datetime | None, end: datetime | None
) -> list[ColumnElement[bool]]:
    conditions = [table.c.view == view]
    conditions += [table.c[name] == value for name, value in filters.items()]
    if view != "cube":
        # The view's other dimension columns are '': the primary key is an equality prefix.
        conditions += [table.c[c] == "" for c in ENTITY_DIMENSIONS if c not in VIEWS[view]]
    if start is not None:
        conditions.append(table.c.bucket >= start)
    if end is not None:
        conditions.append(table.c.bucket < end)
    return conditions


def _group(group: Any, day: str | None, sums: Mapping[Any, Any]) -> SpendGroup:
    return SpendGroup(
        group or None, day, Decimal(str(sums["spend"] or 0)), int(sums["requests"] or 0),
        int(sums["prompt_tokens"] or 0), int(sums["completion_tokens"] or 0),
        int(sums["failed_requests"] or 0), int(sums["cache_read_tokens"] or 0),
        int(sums["cache_write_tokens"] or 0), int(sums["cache_hits"] or 0),
    )


async def rollup_groups(
    conn: AsyncConnection,
    column: str | None,
    by_day: bool,
    filters: Mapping[str, str] | None,
    start: datetime | None,
    end: datetime | None,
) -> list[SpendGroup] | None:
    """``SpendStore.spend_groups`` from the rollups, or ``None`` when they cannot answer it."""
    filters = dict(filters or {})
    chosen = choose(column, filters, start, end)
    if chosen is None:
        return None
    table, view = chosen
    where = _where(table, view, filters, start, end)
    if conn.dialect.name == "sqlite":
        return await _sqlite_groups(conn, table, column, by_day, where)
    return await _pg_groups(conn, table, view, column, by_day, where)


async def _pg_groups(
    conn: AsyncConnection, table: Table, view: str, column: str | None, by_day: bool,
    where: list[ColumnElement[bool]],
) -> list[SpendGroup]:
    """Rows shaped as ``SpendGroup`` by the database (group, UTC day as text, the sums as
    NUMERIC and BIGINT): a month of days per key is 30,000 groups, each built from its row as is."""
    keys: list[ColumnElement[Any]] = []
    group: ColumnElement[Any] = null()
    if column:
        group = func.nullif(table.c[column], "")
        keys.append(group)
    day: ColumnElement[Any] = null()
    if by_day:
        day = func.to_char(func.timezone("UTC", table.c.bucket), "YYYY-MM-DD")
        keys.append(day)
    # A single-dimension view has one row per value and day already. The cube has one per key,
    # model and day (a key belongs to one user, team and org): per key and day its rows are read
    # as they are and the few a key's several models share are summed here, which costs less
    # than PostgreSQL's NUMERIC aggregates and the sort they need.
    raw = by_day and table.name == DAILY and (view != "cube" or column == "api_key")
    spend = table.c.spend if raw else func.sum(table.c.spend)
    counts = [table.c[m] if raw else cast(func.sum(table.c[m]), BigInteger) for m in _SUMS[1:]]
    query = select(group, day, spend, *counts).where(*where)
    if keys and not raw:
        query = query.group_by(*keys)
    # asyncpg's records as they come (NUMERIC as Decimal): no SQLAlchemy row, nor ``Money``'s
    # conversion, per row.
    compiled = query.compile(dialect=conn.dialect)
    driver: Any = (await conn.get_raw_connection()).driver_connection
    rows: Iterable[Sequence[Any]] = await driver.fetch(
        str(compiled), *(compiled.params[name] for name in compiled.positiontup or ())
    )
    with collector_paused():
        if raw and view == "cube":
            rows = _fold(rows)
        return ordered([SpendGroup._make(row) for row in rows if row[3]])


def _fold(rows: Iterable[Sequence[Any]]) -> Iterable[Sequence[Any]]:
    """Rows that share a group and day summed (their first two columns), in first-seen order."""
    folded: dict[tuple[Any, Any], Sequence[Any]] = {}
    for row in rows:
        key = (row[0], row[1])
        seen = folded.get(key)
        if seen is not None:
            row = (*key, *(a + b for a, b in zip(seen[2:], row[2:], strict=True)))
        folded[key] = row
    return folded.values()


async def _sqlite_groups(
    conn: AsyncConnection, table: Table, column: str | None, by_day: bool, where: list[ColumnElement[bool]]
) -> list[SpendGroup]:
    """SQLite keeps money as text: the sums are added here, in ``Decimal``."""
    columns = [table.c.bucket, table.c.spend, *(table.c[m] for m in MEASURES)]
    if column:
        columns.append(table.c[column])
    totals: dict[tuple[Any, str | None], dict[str, Any]] = {}
    async for row in (await conn.stream(select(*columns).where(*where))).mappings():
        bucket = row["bucket"]
        day = day_of(bucket) if by_day else None
        key = (row[column] if column else None, day)
        total = totals.get(key)
        if total is None:
            total = totals[key] = {m: 0 for m in _SUMS}
            total["spend"] = Decimal(0)
        total["spend"] += Decimal(str(row["spend"]))
        for m in MEASURES:
            total[m] += row[m]
    return ordered([_group(group, day, sums) for (group, day), sums in totals.items() if sums["requests"]])
