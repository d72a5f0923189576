"""One suite over every store: in-memory, SQLite (a temporary file) and the machine's PostgreSQL
(a fresh database per run, dropped afterwards; skipped when the server is unreachable)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tollgate.errors import ConfigError, Conflict, NotFound
from tollgate.store import Store
from tollgate.store.records import (
    BudgetWindow,
    EntityPolicy,
    Membership,
    SpendRow,
    StoredDeployment,
    Team,
    UsagePlan,
    User,
    VirtualKey,
)
from tollgate.store.sql_engine import normalize_url

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _key(token: str, alias: str | None = None, user_id: str | None = "u1") -> VirtualKey:
    policy = EntityPolicy(
        models=("gpt-4o", "claude-*"),
        rpm=10,
        input_tpm=1000,
        model_limits={"gpt-4o": {"rpm": 5}},
        budgets=(BudgetWindow(Decimal("0.017"), "1d", NOW + timedelta(days=1)),),
        max_budget=Decimal("12.345678901234"),
        budget_duration="1mo",
        metadata={"a": [1, 2]},
        tags=("x",),
    )
    return VirtualKey(token, "sk-...abcd", alias, user_id, "t1", None, NOW, policy, "admin", NOW, NOW)


async def test_key_round_trip_is_exact(store: Store) -> None:
    key = _key("h1", "alias-1")
    async with store.transaction() as tx:
        await tx.keys.insert(key)
    async with store.transaction() as tx:
        got = await tx.keys.get("h1")
    assert got == key
    assert got is not None and got.policy.max_budget == Decimal("12.345678901234")
    assert got.policy.budgets[0].max_budget == Decimal("0.017")


async def test_duplicate_id_and_alias_conflict(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.keys.insert(_key("h1", "same"))
    with pytest.raises(Conflict):
        async with store.transaction() as tx:
            await tx.keys.insert(_key("h2", "same"))
    with pytest.raises(Conflict):
        async with store.transaction() as tx:
            await tx.keys.insert(_key("h1", "other"))
    async with store.transaction() as tx:
        assert await tx.keys.count() == 1


async def test_transaction_rolls_back_everything(store: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.users.insert(User("u1", email="a@example.com"))
            await tx.keys.insert(_key("h1"))
            raise RuntimeError("boom")
    async with store.transaction() as tx:
        assert await tx.users.get("u1") is None
        assert await tx.keys.get("h1") is None


async def test_replace_delete_find_count(store: Store) -> None:
    async with store.transaction() as tx:
        for i in range(5):
            await tx.keys.insert(
                replace(
                    _key(f"h{i}", f"a{i}", "u1" if i % 2 else "u2"), created_at=NOW + timedelta(seconds=i)
                )
            )
    async with store.transaction() as tx:
        assert [k.token for k in await tx.keys.find({"user_id": "u1"})] == ["h1", "h3"]
        assert [k.token for k in await tx.keys.find(offset=1, limit=2)] == ["h1", "h2"]
        assert await tx.keys.count({"user_id": "u2"}) == 3
        await tx.keys.replace(replace(_key("h0", "renamed", "u2"), created_at=NOW))
        assert (await tx.keys.find({"key_alias": "renamed"}))[0].token == "h0"
        assert await tx.keys.delete(["h0", "missing", "h1"]) == ["h0", "h1"]
        with pytest.raises(NotFound):
            await tx.keys.replace(_key("missing"))
        assert await tx.keys.count() == 3


async def test_memberships_and_plans_have_composite_ids(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.teams.insert(Team("t1", "Team", policy=EntityPolicy(models=("m",))))
        await tx.memberships.insert(Membership("t1", "u1", "admin"))
        await tx.memberships.insert(Membership("t1", "u2"))
        await tx.usage_plans.insert(UsagePlan("USER", "123", {"entity_id": "123", "x": {"y": 1}}))
    async with store.transaction() as tx:
        assert await tx.memberships.get("t1\x1fu1") == Membership("t1", "u1", "admin")
        assert [m.user_id for m in await tx.memberships.find({"team_id": "t1"})] == ["u1", "u2"]
        assert await tx.memberships.delete(["t1\x1fu2"]) == ["t1\x1fu2"]
        plan = await tx.usage_plans.get("USER\x1f123")
        assert plan is not None and plan.document == {"entity_id": "123", "x": {"y": 1}}


async def test_deployments_keep_params(store: Store) -> None:
    dep = StoredDeployment("d1", "model-cheap", {"model": "openai/x", "api_key": "secret"}, {"id": "d1"})
    async with store.transaction() as tx:
        await tx.deployments.insert(dep)
    async with store.transaction() as tx:
        assert await tx.deployments.find({"model_name": "model-cheap"}) == [dep]


async def test_spend_is_logged_and_added_to_totals(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.keys.insert(_key("h1"))
        await tx.users.insert(User("u1"))
        await tx.teams.insert(Team("t1"))
    row = SpendRow(
        "r1",
        NOW,
        NOW + timedelta(seconds=1),
        api_key="h1",
        user_id="u1",
        team_id="t1",
        model_group="gpt-4o",
        prompt_tokens=10,
        completion_tokens=5,
        spend=Decimal("0.000000123456"),
        tags=("a",),
        metadata={"k": "v"},
        client_format="openai",
    )
    row2 = replace(row, request_id="r2", started_at=NOW + timedelta(seconds=5))
    await store.record_spend([row, row2])
    async with store.transaction() as tx:
        key = await tx.keys.get("h1")
        team = await tx.teams.get("t1")
    assert key is not None and key.policy.spend == Decimal("0.000000246912")
    assert team is not None and team.policy.spend == Decimal("0.000000246912")
    logs = await store.spend_logs({"api_key": "h1"})
    assert [r.request_id for r in logs] == ["r2", "r1"]
    assert logs[1] == row
    assert await store.spend_logs(start=NOW + timedelta(seconds=2)) == [row2]


def test_normalize_url() -> None:
    assert normalize_url("postgresql://u:p@h:5432/db") == "postgresql+asyncpg://u:p@h:5432/db"
    assert normalize_url("postgres://u@h/db?sslmode=require") == "postgresql+asyncpg://u@h/db?ssl=require"
    assert normalize_url("sqlite:///tmp/x.db") == "sqlite+aiosqlite:///tmp/x.db"
    assert normalize_url("/var/lib/tollgate.db") == "sqlite+aiosqlite:////var/lib/tollgate.db"
    with pytest.raises(ConfigError):
        normalize_url("mysql://x")
