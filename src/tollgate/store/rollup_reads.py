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

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tollgate.store.aggregate import day_of
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
    keys: list[Any] = []
    if column:
        keys.append(table.c[column].label("grp"))
    if by_day:
        day = table.c.bucket if table.name == DAILY else func.date_trunc("day", table.c.bucket)
        keys.append(day.label("day"))
    where = _where(table, view, filters, start, end)
    if conn.dialect.name == "sqlite":
        return await _sqlite_groups(conn, table, column, by_day, where)
    if by_day and table.name == DAILY and view != "cube":
        # One row per (dimension value, day) already: read the rows, no GROUP BY (and no sort).
        query = select(*keys, *(table.c[m] for m in _SUMS)).where(*where)
    else:
        query = select(*keys, *(func.sum(table.c[m]).label(m) for m in _SUMS)).where(*where)
        if keys:
            query = query.group_by(*keys)
    # Positional rows and no per-value conversions: a month of days per key is 30,000 groups.
    out = []
    days: dict[Any, str] = {}
    n = len(keys)
    for row in (await conn.execute(query)).all():
        if not row[n + 1]:
            continue
        day_text = None
        if by_day:
            bucket = row[n - 1]
            day_text = days.get(bucket)
            if day_text is None:
                day_text = days[bucket] = day_of(bucket.astimezone(UTC))
        spend = row[n]
        out.append(SpendGroup(
            (row[0] or None) if column else None, day_text,
            spend if isinstance(spend, Decimal) else Decimal(str(spend or 0)), *map(int, row[n + 1 :]),
        ))
    out.sort(key=lambda g: (g.day or "", -g.spend, g.group or ""))
    return out


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
    out = [_group(group, day, sums) for (group, day), sums in totals.items() if sums["requests"]]
    out.sort(key=lambda g: (g.day or "", -g.spend, g.group or ""))
    return out
