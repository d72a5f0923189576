"""The SQL store's spend-log statements: the principals' running spend (one UPDATE per table on
PostgreSQL), the spend-log filters, and the GROUP BY over the log for questions the rollups
(``rollup_reads``) cannot answer. Used by ``sql.SqlStore``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from tollgate.store import SPEND_FILTERS
from tollgate.store.aggregate import day_of, ordered
from tollgate.store.records import SpendGroup
from tollgate.store.sql_rows import SPEND, Mapper


async def add_spend(conn: AsyncConnection, mapper: Mapper[Any], entity_id: str, amount: Decimal) -> None:
    where = mapper.where_id(entity_id)
    spend = mapper.table.c.spend
    if conn.dialect.name == "sqlite":
        # Money is text on SQLite, so add in Python; SQLite serialises writers anyway.
        current = (await conn.execute(select(spend).where(where))).scalar_one_or_none()
        if current is not None:
            await conn.execute(update(mapper.table).where(where).values(spend=current + amount))
        return
    await conn.execute(update(mapper.table).where(where).values(spend=spend + amount))


async def add_spend_many(
    conn: AsyncConnection, mapper: Mapper[Any], amounts: Sequence[tuple[str, Decimal]]
) -> None:
    """Every entity of one table in one statement (a batch of 500 rows names hundreds of keys:
    one UPDATE each was most of the writer's time)."""
    table = mapper.table.name
    id_column = mapper.id_columns[0]
    await conn.exec_driver_sql(
        f"UPDATE {table} AS e SET spend = e.spend + v.amount "
        f"FROM unnest($1::text[], $2::numeric[]) AS v(id, amount) WHERE e.{id_column} = v.id",
        ([e for e, _ in amounts], [a for _, a in amounts]),
    )


def spend_where(
    query: Any, filters: Mapping[str, str] | None, start: datetime | None, end: datetime | None
) -> Any:
    for name, value in (filters or {}).items():
        if name not in SPEND_FILTERS:
            raise ValueError(f"spend logs: unknown filter {name!r}")
        if name == "status":
            failed = SPEND.c.status_code >= 400
            query = query.where(failed if value == "failure" else ~failed)
            continue
        query = query.where(SPEND.c[name] == value)
    if start is not None:
        query = query.where(SPEND.c.started_at >= start)
    if end is not None:
        query = query.where(SPEND.c.started_at < end)
    return query


async def sql_groups(
    conn: AsyncConnection,
    column: str | None,
    by_day: bool,
    filters: Mapping[str, str] | None,
    start: datetime | None,
    end: datetime | None,
) -> list[SpendGroup]:
    keys: list[Any] = []
    if column:
        keys.append(SPEND.c[column].label("grp"))
    if by_day:
        keys.append(func.date(func.timezone("UTC", SPEND.c.started_at)).label("day"))
    failed = func.sum(case((SPEND.c.status_code >= 400, 1), else_=0))
    query = select(
        *keys,
        func.sum(SPEND.c.spend).label("spend"),
        func.count().label("requests"),
        func.sum(SPEND.c.prompt_tokens).label("prompt_tokens"),
        func.sum(SPEND.c.completion_tokens).label("completion_tokens"),
        failed.label("failed"),
        func.sum(SPEND.c.cache_read_tokens).label("cache_read"),
        func.sum(SPEND.c.cache_write_tokens).label("cache_write"),
        func.sum(case((SPEND.c.cache_hit, 1), else_=0)).label("cache_hits"),
    )
    query = spend_where(query, filters, start, end)
    if keys:
        query = query.group_by(*keys)
    out = []
    for row in (await conn.execute(query)).mappings():
        if not row["requests"]:
            continue
        day = row["day"] if by_day else None
        out.append(
            SpendGroup(
                row["grp"] if column else None,
                day_of(day) if day is not None else None,
                Decimal(str(row["spend"] or 0)),
                int(row["requests"]),
                int(row["prompt_tokens"] or 0),
                int(row["completion_tokens"] or 0),
                int(row["failed"] or 0),
                int(row["cache_read"] or 0),
                int(row["cache_write"] or 0),
                int(row["cache_hits"] or 0),
            )
        )
    return ordered(out)
