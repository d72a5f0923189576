"""Spend-log queries (idempotent writes, pagination, aggregates, retention), the audit log, and the
migrations producing exactly the current schema — over memory, SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from tollgate.store import Store
from tollgate.store.records import AuditEntry, SpendRow, User
from tollgate.store.schema import migrate
from tollgate.store.sql_tables import METADATA

NOW = datetime(2025, 3, 4, 10, 0, 0, tzinfo=UTC)


def _row(n: int, **kw: Any) -> SpendRow:
    values: dict[str, Any] = {
        "request_id": f"req-{n}",
        "started_at": NOW + timedelta(hours=n),
        "ended_at": NOW + timedelta(hours=n, seconds=1),
        "api_key": "h1",
        "user_id": "u1",
        "model_group": "gpt",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "spend": Decimal("0.000000000123"),
        **kw,
    }
    return SpendRow(**values)


async def test_record_spend_is_idempotent_per_request_id(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.users.insert(User("u1"))
    row = _row(1, completion_start_at=NOW + timedelta(hours=1, seconds=0.25), stream=True, attempts=2)
    await store.record_spend([row, row])
    await store.record_spend([row, _row(2)])
    logs = await store.spend_logs()
    assert [r.request_id for r in logs] == ["req-2", "req-1"]
    assert logs[1] == row
    async with store.transaction() as tx:
        user = await tx.users.get("u1")
    assert user is not None and user.policy.spend == Decimal("0.000000000246")


async def test_spend_logs_paginate_and_filter(store: Store) -> None:
    await store.record_spend([_row(n, team_id="t1" if n % 2 else "t2") for n in range(5)])
    page1 = await store.spend_logs(limit=2)
    page2 = await store.spend_logs(limit=2, offset=2)
    assert [r.request_id for r in page1 + page2] == ["req-4", "req-3", "req-2", "req-1"]
    assert [r.request_id for r in await store.spend_logs({"team_id": "t1"})] == ["req-3", "req-1"]
    window = await store.spend_logs(start=NOW + timedelta(hours=1), end=NOW + timedelta(hours=3))
    assert [r.request_id for r in window] == ["req-2", "req-1"]


async def test_spend_logs_keyset_pages_walk_the_log_once(store: Store) -> None:
    # Ties on started_at are ordered by request id; a keyset page starts right after its cursor.
    rows = [_row(n, started_at=NOW + timedelta(hours=n // 3)) for n in range(8)]
    await store.record_spend(rows)
    everything = [r.request_id for r in await store.spend_logs(limit=100)]
    walked: list[str] = []
    after = None
    while True:
        page = await store.spend_logs({"user_id": "u1"}, limit=3, after=after)
        walked += [r.request_id for r in page]
        if len(page) < 3:
            break
        after = (page[-1].started_at, page[-1].request_id)
    assert walked == everything and sorted(walked) == sorted(r.request_id for r in rows)


async def test_spend_groups_exact_by_group_and_day(store: Store) -> None:
    rows = [
        _row(0, model_group="a", spend=Decimal("0.1")),
        _row(1, model_group="a", spend=Decimal("0.2"), status_code=500),
        _row(30, model_group="b", spend=Decimal("0.000001")),
    ]
    await store.record_spend(rows)
    groups = await store.spend_groups("model")
    assert [(g.group, g.spend, g.requests, g.failed_requests) for g in groups] == [
        ("a", Decimal("0.3"), 2, 1),
        ("b", Decimal("0.000001"), 1, 0),
    ]
    daily = await store.spend_groups("model", by_day=True)
    assert [(g.day, g.group, g.prompt_tokens, g.completion_tokens) for g in daily] == [
        ("2025-03-04", "a", 20, 10),
        ("2025-03-05", "b", 10, 5),
    ]
    total = await store.spend_groups(None, start=NOW + timedelta(hours=1))
    assert [(g.group, g.spend, g.requests) for g in total] == [(None, Decimal("0.200001"), 2)]


async def test_purge_spend_logs(store: Store) -> None:
    await store.record_spend([_row(n) for n in range(4)])
    assert await store.purge_spend_logs(NOW + timedelta(hours=2)) == 2
    assert [r.request_id for r in await store.spend_logs()] == ["req-3", "req-2"]


async def test_purge_deletes_in_batches_of_bounded_size(store: Store, monkeypatch: Any) -> None:
    import tollgate.store.sql as sql

    monkeypatch.setattr(sql, "PURGE_BATCH", 3)
    await store.record_spend([_row(n) for n in range(10)])
    assert await store.purge_spend_logs(NOW + timedelta(hours=7)) == 7
    assert [r.request_id for r in await store.spend_logs()] == ["req-9", "req-8", "req-7"]


async def test_audit_log_round_trip(store: Store) -> None:
    first = AuditEntry(
        "a1", NOW, "/key/generate", target_id="h1", actor_kind="master", actor_key="master",
        before=None, after={"key_alias": "x", "token": "h1"},
    )
    second = AuditEntry("a2", NOW + timedelta(seconds=1), "/key/delete", target_id="h1", before={"k": 1})
    async with store.transaction() as tx:
        await tx.audit.insert(first)
    async with store.transaction() as tx:
        await tx.audit.insert(second)
    with contextlib.suppress(RuntimeError):  # a write that fails takes its audit entry with it
        async with store.transaction() as tx:
            await tx.audit.insert(AuditEntry("a3", NOW, "/key/delete"))
            raise RuntimeError("the write failed")
    assert await store.audit_logs() == [second, first]
    assert await store.audit_logs({"action": "/key/generate"}) == [first]
    assert await store.audit_logs(limit=1, offset=1) == [first]


async def test_migrations_build_exactly_the_current_schema(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    url = f"sqlite:///{tmp_path}/schema.db"
    await migrate(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), METADATA)
    engine.dispose()
    # SQLite reports no server-default or type differences we care about; tables/columns/indexes must match.
    structural = [d for d in diff if isinstance(d, tuple) and d[0] in (
        "add_table", "remove_table", "add_column", "remove_column", "add_index", "remove_index"
    )]
    assert structural == []
