"""The reads admission depends on — a key's entity chain and the spend of record — over memory,
SQLite and PostgreSQL; on PostgreSQL, that they are one statement and use the indexes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, text

from tollgate.store import Store
from tollgate.store.records import (
    EntityPolicy,
    Organization,
    SpendQuery,
    SpendRow,
    Team,
    User,
    VirtualKey,
)
from tollgate.store.sql import SqlStore

DAY = datetime(2025, 3, 4, tzinfo=UTC)


async def seed_chain(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.orgs.insert(Organization("o1", "org-one", EntityPolicy(rpm=9)))
        await tx.orgs.insert(Organization("o2"))
        await tx.teams.insert(Team("t1", "team-one", "o1", EntityPolicy(models=("gpt",))))
        await tx.users.insert(User("u1", org_id="o2", role="proxy_admin"))
        await tx.keys.insert(VirtualKey("k-team", "sk-...a", user_id="u1", team_id="t1"))
        await tx.keys.insert(VirtualKey("k-user", "sk-...b", user_id="u1"))
        await tx.keys.insert(VirtualKey("k-own", "sk-...c", team_id="t1", org_id="o2"))
        await tx.keys.insert(VirtualKey("k-alone", "sk-...d", user_id="ghost"))


async def test_key_chain_joins_user_team_and_the_right_org(store: Store) -> None:
    await seed_chain(store)
    chain = await store.key_chain("k-team")
    assert chain is not None
    assert chain.user is not None and chain.team is not None
    assert (chain.key.token, chain.user.id, chain.team.id) == ("k-team", "u1", "t1")
    assert chain.org is not None and (chain.org.id, chain.org.policy.rpm) == ("o1", 9)  # the team's org
    assert chain.team is not None and chain.team.policy.models == ("gpt",)
    user_only = await store.key_chain("k-user")
    assert user_only is not None and user_only.team is None
    assert user_only.org is not None and user_only.org.id == "o2"  # the user's org
    own = await store.key_chain("k-own")
    assert own is not None and own.org is not None and own.org.id == "o2"  # the key's own org wins
    alone = await store.key_chain("k-alone")
    assert alone is not None and (alone.user, alone.team, alone.org) == (None, None, None)
    assert await store.key_chain("nope") is None


def _row(n: int, at: datetime, spend: str, **kw: str) -> SpendRow:
    return SpendRow(f"r{n}", at, at + timedelta(seconds=1), spend=Decimal(spend), **kw)


async def test_spend_of_record_sums_windows_and_reads_lifetime_totals(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.keys.insert(VirtualKey("k1", "sk-...k"))
        await tx.users.insert(User("u1"))
    rows = [
        _row(1, DAY - timedelta(seconds=1), "1.000000000001", api_key="k1", user_id="u1", team_id="t1"),
        _row(2, DAY, "0.25", api_key="k1", user_id="u1", org_id="o1"),
        _row(3, DAY + timedelta(hours=23, minutes=59), "0.5", api_key="k1", team_id="t1", org_id="o1"),
        _row(4, DAY + timedelta(days=1), "4", api_key="k2", user_id="u1"),
    ]
    await store.record_spend(rows)
    end = DAY + timedelta(days=1)
    totals = await store.spend_of_record([
        SpendQuery("key", "k1", DAY, end),
        SpendQuery("user", "u1", DAY, end),
        SpendQuery("team", "t1", DAY, end),
        SpendQuery("org", "o1", DAY, end),
        SpendQuery("proxy", "proxy", DAY, end),
        SpendQuery("key", "k1"),  # lifetime: the key's spend column
        SpendQuery("key", "k-unknown"),
        SpendQuery("service", "svc", DAY, end),  # not in the spend log
        SpendQuery("proxy", "proxy"),
    ])
    assert totals == [
        Decimal("0.75"), Decimal("0.25"), Decimal("0.5"), Decimal("0.75"), Decimal("0.75"),
        Decimal("1.750000000001"), Decimal(0), Decimal(0), Decimal("5.750000000001"),
    ]
    assert await store.spend_of_record([]) == []


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)  # the plan is PostgreSQL's to show
async def test_postgresql_reads_are_one_statement_on_the_indexes(store: Store) -> None:
    assert isinstance(store, SqlStore) and store.engine.dialect.name == "postgresql"
    await seed_chain(store)
    statements: list[str] = []
    event.listen(store.engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: statements.append(statement))
    await store.key_chain("k-team")
    await store.spend_of_record([SpendQuery("key", "k1", DAY, DAY + timedelta(days=1)),
                                 SpendQuery("org", "o1", DAY, DAY + timedelta(days=1))])
    assert len(statements) == 2
    async with store.engine.connect() as conn:
        await conn.execute(text("SET enable_seqscan = off"))  # an empty table: ask what it would use
        plan = "\n".join(row[0] for row in await conn.execute(text(
            "EXPLAIN SELECT sum(spend) FROM tollgate_spend_logs WHERE org_id = 'o1' "
            "AND started_at >= now() - interval '1 day' AND started_at < now()"
        )))
    assert "ix_tollgate_spend_logs_org_id_started_at" in plan
