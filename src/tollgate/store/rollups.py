"""Keeping the spend rollups (``rollup_tables``) equal to the spend log they summarise.

``add_rows`` runs in the transaction that inserts a batch of spend rows, so a batch and its sums
commit together or not at all. On PostgreSQL the database sums the batch it has just inserted
(``INSERT … SELECT … GROUP BY GROUPING SETS … ON CONFLICT DO UPDATE``, one statement per table for
the entity views and one for tags: no per-row work in Python); rows are ordered by the primary key
so concurrent writers lock rollup rows in the same order. On SQLite money is text, so the batch is
summed in Python in ``Decimal`` and merged into the rows already there (SQLite has one writer at a
time). ``rebuild`` recomputes every rollup from the raw rows (``tollgate rollups rebuild``, and the
migration that creates the tables); retention deletes raw rows only, so rollups keep the totals.

The functions take a synchronous ``Connection`` (``AsyncConnection.run_sync`` from the store), so
Alembic's migration can call ``rebuild`` as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, delete, select, text, tuple_
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tollgate.store.records import SpendRow
from tollgate.store.rollup_tables import (
    DAILY,
    DAILY_VIEWS,
    DIMENSIONS,
    ENTITY_DIMENSIONS,
    HOURLY,
    HOURLY_VIEWS,
    MEASURES,
    VIEWS,
)
from tollgate.store.sql_tables import PREFIX, T

SPEND_LOG = f"{PREFIX}spend_logs"
KEY_COLUMNS = ("view", *DIMENSIONS, "bucket")
_SUMS = (*MEASURES, "spend")
# (table, views, date_trunc unit)
_GRAINS = ((HOURLY, HOURLY_VIEWS, "hour"), (DAILY, DAILY_VIEWS, "day"))

RollupKey = tuple[Any, ...]  # view, the six dimension values, bucket


# ---------------------------------------------------------------- PostgreSQL: the database sums


def _grouping_bits(dims: Sequence[str]) -> int:
    """``GROUPING(k, u, t, o, m)`` of a grouping set that groups ``dims``: 1 bits are not grouped."""
    bits = 0
    for i, column in enumerate(ENTITY_DIMENSIONS):
        if column not in dims:
            bits |= 1 << (len(ENTITY_DIMENSIONS) - 1 - i)
    return bits


_ALIASES = dict(zip(ENTITY_DIMENSIONS, ("k", "u", "t", "o", "m"), strict=True))
_SOURCE = (
    "SELECT date_trunc('{unit}', started_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS b, "
    + ", ".join(f"coalesce({c}, '') AS {a}" for c, a in _ALIASES.items())
    + ", status_code >= 400 AS failed, prompt_tokens, completion_tokens, cache_read_tokens, "
    "cache_write_tokens, cache_hit, spend, tags FROM " + SPEND_LOG + " WHERE {where}"
)
_MEASURE_SQL = (
    "count(*), count(*) FILTER (WHERE failed), sum(prompt_tokens), sum(completion_tokens), "
    "sum(cache_read_tokens), sum(cache_write_tokens), count(*) FILTER (WHERE cache_hit), sum(spend)"
)


def _upsert_tail(table: str) -> str:
    sums = ", ".join(f"{m} = r.{m} + excluded.{m}" for m in _SUMS)
    return f" ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {sums}"


def _insert_head(table: str) -> str:
    return f"INSERT INTO {table} AS r ({', '.join((*KEY_COLUMNS, *_SUMS))}) "


def pg_statements(where: str, *, ordered: bool = True) -> list[str]:
    """The statements that add the spend rows matching ``where`` to every rollup; ``ordered``:
    in primary-key order, so concurrent batches lock shared rollup rows in the same order."""
    out = []
    for table, views, unit in _GRAINS:
        entity_views = [v for v in views if v != "tag"]
        cases = " ".join(f"WHEN {_grouping_bits(VIEWS[v])} THEN '{v}'" for v in entity_views)
        sets = ", ".join(
            "(" + ", ".join(["b", *(_ALIASES[c] for c in VIEWS[v])]) + ")" for v in entity_views
        )
        dims = ", ".join(f"coalesce({a}, '')" for a in _ALIASES.values())
        source = _SOURCE.format(unit=unit, where=where)
        out.append(
            _insert_head(table)
            + f"SELECT CASE GROUPING({', '.join(_ALIASES.values())}) {cases} END, {dims}, '', b, "
            + f"{_MEASURE_SQL} FROM ({source}) s GROUP BY GROUPING SETS ({sets})"
            + (" ORDER BY 1, 2, 3, 4, 5, 6, 7, 8" if ordered else "")
            + _upsert_tail(table)
        )
        if "tag" in views:
            out.append(
                _insert_head(table)
                + f"SELECT 'tag', '', '', '', '', '', x.tag, b, {_MEASURE_SQL} FROM ({source}) s "
                + "CROSS JOIN LATERAL (SELECT DISTINCT value FROM json_array_elements_text(s.tags)) "
                + "AS x(tag) GROUP BY b, x.tag"
                + (" ORDER BY 7, 8" if ordered else "")
                + _upsert_tail(table)
            )
    return out


_BATCH_STATEMENTS = pg_statements("request_id = ANY(:ids)")
_REBUILD_STATEMENTS = pg_statements("TRUE", ordered=False)  # the rebuild holds the tables alone


# ---------------------------------------------------------------- SQLite: Python sums in Decimal


def _hour(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


_SLOTS = {v: tuple(DIMENSIONS.index(c) for c in dims) for v, dims in VIEWS.items()}


def _view_key(view: str, values: Sequence[str], bucket: datetime) -> RollupKey:
    slots = _SLOTS[view]
    return (view, *(values[i] if i in slots else "" for i in range(len(DIMENSIONS))), bucket)


class Sums:
    """Rollup deltas of some spend rows, per table and key; ``add`` one row at a time."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[RollupKey, list[Any]]] = {HOURLY: {}, DAILY: {}}

    def add(
        self, started_at: datetime, entities: Sequence[str | None], tags: Iterable[str],
        measures: Sequence[Any],
    ) -> None:
        """``entities``: api_key, user_id, team_id, org_id, model_group; ``measures`` in ``_SUMS``
        order (requests is 1)."""
        hour = _hour(started_at)
        day = hour.replace(hour=0)
        values = [v or "" for v in entities] + [""]
        tag_values = sorted({str(t) for t in tags})
        for table, views, _ in _GRAINS:
            bucket = hour if table == HOURLY else day
            sums = self.tables[table]
            keys = [_view_key(v, values, bucket) for v in views if v != "tag"]
            if "tag" in views:
                keys += [("tag", "", "", "", "", "", t, bucket) for t in tag_values]
            for key in keys:
                total = sums.get(key)
                if total is None:
                    sums[key] = list(measures)
                else:
                    for i, value in enumerate(measures):
                        total[i] += value

    def add_row(self, r: SpendRow) -> None:
        failed = 1 if r.status_code >= 400 else 0
        self.add(
            r.started_at, (r.api_key, r.user_id, r.team_id, r.org_id, r.model_group), r.tags,
            (1, failed, r.prompt_tokens, r.completion_tokens, r.cache_read_tokens,
             r.cache_write_tokens, 1 if r.cache_hit else 0, r.spend),
        )

    def add_mapping(self, w: Mapping[Any, Any]) -> None:
        failed = 1 if w["status_code"] >= 400 else 0
        self.add(
            w["started_at"], [w[c] for c in ENTITY_DIMENSIONS], w["tags"] or (),
            (1, failed, w["prompt_tokens"], w["completion_tokens"], w["cache_read_tokens"],
             w["cache_write_tokens"], 1 if w["cache_hit"] else 0, Decimal(str(w["spend"]))),
        )


def _rows(sums: Mapping[RollupKey, Sequence[Any]]) -> list[dict[str, Any]]:
    return [
        {**dict(zip(KEY_COLUMNS, key, strict=True)), **dict(zip(_SUMS, total, strict=True))}
        for key, total in sorted(sums.items())
    ]


def _merge_sqlite(conn: Connection, table: Table, sums: dict[RollupKey, list[Any]]) -> None:
    keys = list(sums)
    pk = tuple_(*(table.c[c] for c in KEY_COLUMNS))
    for i in range(0, len(keys), 100):
        chunk = keys[i : i + 100]
        found = conn.execute(select(table).where(pk.in_(chunk))).mappings()
        for row in found:
            key = (*(row[c] for c in KEY_COLUMNS[:-1]), _aware(row["bucket"]))
            total = sums.get(key)
            if total is not None:
                for j, name in enumerate(_SUMS):
                    total[j] += row[name]
    statement = sqlite_insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS), set_={m: statement.excluded[m] for m in _SUMS}
    )
    conn.execute(statement, _rows(sums))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------- both


def add_rows(conn: Connection, rows: Sequence[SpendRow]) -> None:
    """Add spend rows just inserted in this transaction to the rollups."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        ids = [r.request_id for r in rows]
        for statement in _BATCH_STATEMENTS:
            conn.execute(text(statement), {"ids": ids})
        return
    sums = Sums()
    for r in rows:
        sums.add_row(r)
    for name, table_sums in sums.tables.items():
        if table_sums:
            _merge_sqlite(conn, T[name], table_sums)


_RAW_COLUMNS = (
    "started_at", *ENTITY_DIMENSIONS, "tags", "status_code", "prompt_tokens", "completion_tokens",
    "cache_read_tokens", "cache_write_tokens", "cache_hit", "spend",
)


def rebuild(conn: Connection) -> int:
    """Recompute every rollup from the spend log, in the caller's transaction; returns the number
    of rollup rows written. Writers wait for it on PostgreSQL (``TRUNCATE`` locks the rollups)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"TRUNCATE {HOURLY}, {DAILY}"))
        conn.execute(text("SET LOCAL work_mem = '256MB'"))
        conn.execute(text("SET LOCAL jit = off"))
        for statement in _REBUILD_STATEMENTS:
            conn.execute(text(statement))
        # Fresh statistics: the planner would otherwise take the new tables for empty ones.
        conn.execute(text(f"ANALYZE {HOURLY}, {DAILY}"))
    else:
        for name in (HOURLY, DAILY):
            conn.execute(delete(T[name]))
        spend = T[SPEND_LOG]
        sums = Sums()
        result = conn.execution_options(stream_results=True).execute(
            select(*(spend.c[c] for c in _RAW_COLUMNS))
        )
        for row in result.mappings():
            sums.add_mapping(row)
        for name, table_sums in sums.tables.items():
            if table_sums:
                conn.execute(T[name].insert(), _rows(table_sums))
    count = 0
    for name in (HOURLY, DAILY):
        count += int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one())
    return count
