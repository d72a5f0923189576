"""The spend rollups equal GROUP BY sums of the spend rows they summarise (property test over
random rows, written in random batches), on SQLite and PostgreSQL: after the writes, after
``rebuild``, and after retention deleted raw rows (the rollups keep the totals; a rebuild then
sums what is left). ``spend_groups`` answered from the rollups equals the same sums of the rows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from tests.services import postgres_database
from tollgate.store.records import SpendQuery, SpendRow
from tollgate.store.rollup_reads import choose
from tollgate.store.rollup_tables import DAILY, DAILY_VIEWS, DIMENSIONS, HOURLY, HOURLY_VIEWS, VIEWS
from tollgate.store.schema import migrate
from tollgate.store.sql import SqlStore

BASE = datetime(2026, 3, 1, tzinfo=UTC)
ENTITIES = ("api_key", "user_id", "team_id", "org_id", "model_group")
SUMS = ("requests", "failed_requests", "prompt_tokens", "completion_tokens", "cache_read_tokens",
        "cache_write_tokens", "cache_hits", "spend")


def _maybe(*values: str) -> st.SearchStrategy[str | None]:
    return st.sampled_from((None, *values))


ROWS = st.builds(
    dict,
    minute=st.integers(0, 3 * 24 * 60),
    second=st.integers(0, 59),
    api_key=_maybe("k1", "k2", "k3"),
    user_id=_maybe("u1", "u2"),
    team_id=_maybe("t1", "t2"),
    org_id=_maybe("o1"),
    model_group=_maybe("m1", "m2"),
    tags=st.lists(st.sampled_from(("env:prod", "env:dev", "team-x")), max_size=3),
    prompt_tokens=st.integers(0, 5000),
    completion_tokens=st.integers(0, 5000),
    cache_read_tokens=st.integers(0, 100),
    cache_write_tokens=st.integers(0, 100),
    spend=st.integers(0, 10**14).map(lambda n: Decimal(n).scaleb(-12)),
    status_code=st.sampled_from((200, 200, 200, 429, 500)),
    cache_hit=st.booleans(),
)
BATCHES = st.lists(st.lists(ROWS, max_size=8), max_size=4)


def _rows(batches: Sequence[Sequence[Mapping[str, Any]]]) -> list[list[SpendRow]]:
    out, n = [], 0
    for batch in batches:
        rows = []
        for raw in batch:
            n += 1
            values = dict(raw)
            started = BASE + timedelta(minutes=values.pop("minute"), seconds=values.pop("second"))
            values["tags"] = tuple(values["tags"])
            rows.append(SpendRow(f"req-{n}", started, started + timedelta(seconds=1), **values))
        out.append(rows)
    return out


def _measures(r: SpendRow) -> list[Any]:
    return [1, int(r.status_code >= 400), r.prompt_tokens, r.completion_tokens, r.cache_read_tokens,
            r.cache_write_tokens, int(r.cache_hit), r.spend]


def expected_rollups(rows: Sequence[SpendRow]) -> dict[tuple[Any, ...], list[Any]]:
    """GROUP BY (table, view, dimension values, bucket) over the rows, plainly."""
    out: dict[tuple[Any, ...], list[Any]] = {}
    for r in rows:
        hour = r.started_at.replace(minute=0, second=0, microsecond=0)
        grains = ((HOURLY, HOURLY_VIEWS, hour), (DAILY, DAILY_VIEWS, hour.replace(hour=0)))
        for table, views, bucket in grains:
            for view in views:
                if view == "tag":
                    keys = [("", "", "", "", "", tag) for tag in set(r.tags)]
                else:
                    keys = [tuple(
                        (getattr(r, c) or "") if c in VIEWS[view] else "" for c in DIMENSIONS
                    )]
                for dims in keys:
                    total = out.setdefault((table, view, *dims, bucket), [0] * 7 + [Decimal(0)])
                    for i, value in enumerate(_measures(r)):
                        total[i] += value
    return out


async def stored_rollups(store: SqlStore) -> dict[tuple[Any, ...], list[Any]]:
    from tollgate.store.sql_tables import T

    out = {}
    async with store.engine.connect() as conn:
        for name in (HOURLY, DAILY):
            for row in (await conn.execute(select(T[name]))).mappings():
                bucket = row["bucket"] if row["bucket"].tzinfo else row["bucket"].replace(tzinfo=UTC)
                key = (name, row["view"], *(row[c] for c in DIMENSIONS), bucket)
                out[key] = [row[m] for m in SUMS]
    return out


QUESTIONS: list[tuple[str | None, dict[str, str]]] = [
    (None, {}), ("key", {}), ("user", {}), ("team", {}), ("org", {}), ("model", {}),
    ("model", {"user_id": "u1"}), ("key", {"user_id": "u2"}), (None, {"api_key": "k1"}),
    ("model", {"api_key": "k2", "user_id": "u1"}), ("team", {"user_id": "u1"}), (None, {"model_group": "m2"}),
    ("key", {"model_group": "m1"}), ("key", {"team_id": "t2"}),  # the cube's rows per key, summed in Python
]
COLUMNS = {"key": "api_key", "user": "user_id", "team": "team_id", "org": "org_id", "model": "model_group"}
WINDOWS = [(None, None), (BASE + timedelta(days=1), None), (BASE, BASE + timedelta(days=2)),
           (BASE + timedelta(hours=30), BASE + timedelta(hours=41))]


def expected_groups(
    rows: Sequence[SpendRow], group_by: str | None, filters: Mapping[str, str], by_day: bool,
    start: datetime | None, end: datetime | None,
) -> dict[tuple[Any, ...], list[Any]]:
    out: dict[tuple[Any, ...], list[Any]] = {}
    for r in rows:
        if any(getattr(r, k) != v for k, v in filters.items()):
            continue
        if (start and r.started_at < start) or (end and r.started_at >= end):
            continue
        group = getattr(r, COLUMNS[group_by]) if group_by else None
        day = r.started_at.date().isoformat() if by_day else None
        total = out.setdefault((group, day), [0] * 7 + [Decimal(0)])
        for i, value in enumerate(_measures(r)):
            total[i] += value
    return out


async def check_groups(store: SqlStore, rows: Sequence[SpendRow], kept: Sequence[SpendRow]) -> None:
    """``rows``: every row written; ``kept``: those retention left. Questions the rollups answer
    cover every row; the others (unaligned windows of the daily-only cube) read what is kept."""
    for group_by, filters in QUESTIONS:
        for start, end in WINDOWS:
            for by_day in (False, True):
                groups = await store.spend_groups(
                    group_by, by_day=by_day, filters=filters, start=start, end=end
                )
                got = {
                    (g.group, g.day): [g.requests, g.failed_requests, g.prompt_tokens, g.completion_tokens,
                                       g.cache_read_tokens, g.cache_write_tokens, g.cache_hits, g.spend]
                    for g in groups
                }
                column = COLUMNS[group_by] if group_by else None
                source = rows if choose(column, filters, start, end) is not None else kept
                want = expected_groups(source, group_by, filters, by_day, start, end)
                assert got == want, (group_by, filters, start, end, by_day)


RECORD_WINDOWS = [
    (BASE, None), (BASE + timedelta(minutes=90), BASE + timedelta(hours=50, minutes=7)),
    (BASE + timedelta(hours=5, seconds=1), BASE + timedelta(hours=5, minutes=30)),
    (BASE + timedelta(days=1), BASE + timedelta(days=2)),
]
RECORD_KINDS = {"key": ("api_key", "k1"), "user": ("user_id", "u2"), "team": ("team_id", "t1"),
                "org": ("org_id", "o1"), "proxy": (None, "proxy")}


async def check_spend_of_record(store: SqlStore, rows: Sequence[SpendRow]) -> None:
    """Budget windows of any shape: whole hours from the hourly rollup, the ends from the log."""
    queries = [SpendQuery(kind, entity, start, end)
               for kind, (_, entity) in RECORD_KINDS.items() for start, end in RECORD_WINDOWS]
    want = []
    for q in queries:
        column = RECORD_KINDS[q.kind][0]
        want.append(sum((r.spend for r in rows
                         if (column is None or getattr(r, column) == q.entity_id)
                         and q.start is not None and r.started_at >= q.start
                         and (q.end is None or r.started_at < q.end)), Decimal(0)))
    assert await store.spend_of_record(queries) == want


async def _clear(store: SqlStore) -> None:
    async with store.engine.begin() as conn:
        for name in ("tollgate_spend_logs", HOURLY, DAILY):
            await conn.execute(text(f"DELETE FROM {name}"))


async def _property(store: SqlStore, batches: list[list[SpendRow]], cut_hours: int) -> None:
    await _clear(store)
    everything = [r for batch in batches for r in batch]
    for batch in batches:
        await store.record_spend(batch)
        await store.record_spend(batch[:2])  # a replayed batch is not counted twice
    want = expected_rollups(everything)
    assert await stored_rollups(store) == want
    await check_groups(store, everything, everything)
    await check_spend_of_record(store, everything)

    await store.rebuild_rollups()
    assert await stored_rollups(store) == want

    cut = BASE + timedelta(hours=cut_hours)
    purged = await store.purge_spend_logs(cut)
    assert purged == sum(1 for r in everything if r.started_at < cut)
    assert await stored_rollups(store) == want  # retention leaves the rollups alone
    kept = [r for r in everything if r.started_at >= cut]
    await check_groups(store, everything, kept)  # … so the reports keep the purged rows' totals

    await store.rebuild_rollups()
    assert await stored_rollups(store) == expected_rollups(kept)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/rollups.db"
        return
    with postgres_database() as url:
        yield url


def test_rollups_equal_group_by_sums_of_the_rows(database: str) -> None:
    with asyncio.Runner() as runner:
        runner.run(migrate(database))
        store = SqlStore(database, pool_size=2)

        @settings(
            max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
            phases=(Phase.explicit, Phase.reuse, Phase.generate),  # shrinking a DB test takes minutes
        )
        @given(batches=BATCHES, cut_hours=st.integers(0, 80))
        def prop(batches: list[list[dict[str, Any]]], cut_hours: int) -> None:
            runner.run(_property(store, _rows(batches), cut_hours))

        try:
            prop()
        finally:
            runner.run(store.close())


def test_questions_the_rollups_cannot_answer_go_to_the_spend_log() -> None:
    day = BASE
    assert choose("team_id", {}, day, day + timedelta(days=3)) is not None
    assert choose(None, {"status": "failure"}, None, None) is None
    assert choose(None, {"request_id": "r"}, None, None) is None
    assert choose("deployment_id", {}, None, None) is None
    assert choose("api_key", {}, day + timedelta(minutes=5), None) is None
    assert choose("api_key", {}, day + timedelta(hours=5), None) is not None  # hourly
    assert choose("api_key", {"user_id": "u"}, day + timedelta(hours=5), None) is None  # cube: daily
