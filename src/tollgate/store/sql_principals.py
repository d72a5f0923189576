"""The SQL reads admission control depends on: a key's whole entity chain in one statement, and
the spend of record that budget counters are rebuilt from.

``key_chain`` joins the key to its user, team and organisation (the org: the key's own, else its
team's, else its user's) — one primary-key lookup plus three more through the join, one round
trip. ``spend_of_record`` answers many totals at once: lifetime totals from the entities' ``spend``
columns; a window's whole hours from the hourly rollup (``rollup_tables``: one primary-key range per
entity) and its ragged ends, under an hour each, from the spend log by the ``(entity column,
started_at)`` indexes — so a 30-day window of a busy team reads ~720 rollup rows, not its log.
Imports only ``store.records``, ``store.sql_rows`` and the table modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from tollgate.store.records import KeyChain, SpendQuery
from tollgate.store.rollup_tables import ENTITY_DIMENSIONS, HOURLY
from tollgate.store.sql_rows import KEYS, ORGS, SPEND, TEAMS, USERS, Mapper
from tollgate.store.sql_tables import T

_PREFIXES: tuple[tuple[str, Mapper[Any]], ...] = (("k_", KEYS), ("u_", USERS), ("t_", TEAMS), ("o_", ORGS))
_ENTITY_TABLES: dict[str, Mapper[Any]] = {"key": KEYS, "user": USERS, "team": TEAMS, "org": ORGS}
_SPEND_COLUMNS = {"key": "api_key", "user": "user_id", "team": "team_id", "org": "org_id"}
_ROLLUP_VIEWS = {"key": "key", "user": "user", "team": "team", "org": "org", "proxy": "all"}
HOURLY_TABLE = T[HOURLY]
HOUR = timedelta(hours=1)


def _chain_query(token: str) -> Select[Any]:
    key, user, team, org = (m.table for _, m in _PREFIXES)
    org_id = func.coalesce(key.c.org_id, team.c.org_id, user.c.org_id)
    columns = [c.label(prefix + c.name) for prefix, m in _PREFIXES for c in m.table.c]
    joined = (
        key.outerjoin(user, user.c.id == key.c.user_id)
        .outerjoin(team, team.c.id == key.c.team_id)
        .outerjoin(org, org.c.id == org_id)
    )
    return select(*columns).select_from(joined).where(key.c.token == token)


async def key_chain(conn: AsyncConnection, token: str) -> KeyChain | None:
    row = (await conn.execute(_chain_query(token))).mappings().first()
    if row is None:
        return None
    records: list[Any] = []
    for prefix, mapper in _PREFIXES:
        values = {c.name: row[prefix + c.name] for c in mapper.table.c}
        present = values[mapper.id_columns[0]] is not None
        records.append(mapper.from_row(values) if present else None)
    return KeyChain(*records)


def _window_filter(query: SpendQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    column = _SPEND_COLUMNS.get(query.kind)
    if column is not None:
        conditions.append(SPEND.c[column] == query.entity_id)
    if query.start is not None:
        conditions.append(SPEND.c.started_at >= query.start)
    if query.end is not None:
        conditions.append(SPEND.c.started_at < query.end)
    return conditions


def _ceil_hour(moment: datetime) -> datetime:
    floor = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + HOUR


def _pieces(query: SpendQuery) -> tuple[list[SpendQuery], SpendQuery | None]:
    """A window split into the parts outside whole hours (read from the spend log) and the whole
    hours between them (read from the hourly rollup), or all of it from the log when that is
    less than an hour."""
    if query.start is None:  # the proxy's lifetime: every hour of the rollup
        return [], query
    first = _ceil_hour(query.start)
    last = None if query.end is None else query.end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if last is not None and last <= first:
        return [query], None
    edges = [SpendQuery(query.kind, query.entity_id, query.start, first)] if first != query.start else []
    if last is not None and query.end is not None and last != query.end:
        edges.append(SpendQuery(query.kind, query.entity_id, last, query.end))
    return edges, SpendQuery(query.kind, query.entity_id, first, last)


def _rollup_filter(query: SpendQuery) -> list[ColumnElement[bool]]:
    column = _SPEND_COLUMNS.get(query.kind)
    view = _ROLLUP_VIEWS[query.kind]
    conditions = [HOURLY_TABLE.c.view == view]
    conditions += [HOURLY_TABLE.c[c] == (query.entity_id if c == column else "") for c in ENTITY_DIMENSIONS]
    conditions.append(HOURLY_TABLE.c.tag == "")
    if query.start is not None:
        conditions.append(HOURLY_TABLE.c.bucket >= query.start)
    if query.end is not None:
        conditions.append(HOURLY_TABLE.c.bucket < query.end)
    return conditions


def _lifetime_column(query: SpendQuery) -> Any:
    mapper = _ENTITY_TABLES[query.kind]
    return select(mapper.table.c.spend).where(mapper.where_id(query.entity_id)).scalar_subquery()


class PrincipalReads:
    """``SqlStore``'s ``key_chain`` and ``spend_of_record`` (``store.PrincipalStore``, ``SpendStore``).
    Reads go through ``SqlStore._connect``, so a database outage is ``StoreUnavailable`` here too."""

    def _connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        raise NotImplementedError

    async def key_chain(self, token: str) -> KeyChain | None:
        async with self._connect() as conn:
            return await key_chain(conn, token)

    async def spend_of_record(self, queries: Sequence[SpendQuery]) -> list[Decimal]:
        async with self._connect() as conn:
            return await spend_of_record(conn, queries)


async def spend_of_record(conn: AsyncConnection, queries: Sequence[SpendQuery]) -> list[Decimal]:
    """See the module docstring. On SQLite money is text, so window rows are summed in Python.
    An entity kind the spend log does not name (a JWT service) has no spend of record: 0."""
    known = [i for i, q in enumerate(queries) if q.kind in _SPEND_COLUMNS or q.kind == "proxy"]
    totals = [Decimal(0)] * len(queries)
    for i, value in zip(known, await _totals(conn, [queries[i] for i in known]), strict=True):
        totals[i] = value
    return totals


async def _totals(conn: AsyncConnection, queries: Sequence[SpendQuery]) -> list[Decimal]:
    if not queries:
        return []
    if conn.dialect.name == "sqlite":
        return [await _sqlite_total(conn, q) for q in queries]
    subqueries: list[Any] = []
    for query in queries:
        if query.start is None and query.kind in _ENTITY_TABLES:
            subqueries.append(_lifetime_column(query))
            continue
        edges, hours = _pieces(query)
        parts: list[Any] = []
        for edge in edges:
            total = func.coalesce(func.sum(SPEND.c.spend), 0)
            parts.append(select(total).where(*_window_filter(edge)).scalar_subquery())
        if hours is not None:
            total = func.coalesce(func.sum(HOURLY_TABLE.c.spend), 0)
            parts.append(select(total).where(*_rollup_filter(hours)).scalar_subquery())
        subqueries.append(sum(parts[1:], parts[0]))  # a window has one part at least
    row = (await conn.execute(select(*(s.label(f"q{i}") for i, s in enumerate(subqueries))))).one()
    return [Decimal(str(value)) if value is not None else Decimal(0) for value in row]


async def _sqlite_total(conn: AsyncConnection, query: SpendQuery) -> Decimal:
    if query.start is None and query.kind in _ENTITY_TABLES:
        value = (await conn.execute(select(_lifetime_column(query)))).scalar()
        return Decimal(str(value)) if value is not None else Decimal(0)
    edges, hours = _pieces(query)
    total = Decimal(0)
    for edge in edges:
        rows = await conn.execute(select(SPEND.c.spend).where(*_window_filter(edge)))
        total += sum((Decimal(str(v)) for v in rows.scalars() if v is not None), Decimal(0))
    if hours is not None:
        rows = await conn.execute(select(HOURLY_TABLE.c.spend).where(*_rollup_filter(hours)))
        total += sum((Decimal(str(v)) for v in rows.scalars() if v is not None), Decimal(0))
    return total

