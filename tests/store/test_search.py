"""The UI's search boxes and the logs page's status filter, on every store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tollgate.store import Store
from tollgate.store.records import SpendRow, Team, VirtualKey

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def test_search_matches_any_named_field_ignoring_case(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.keys.insert(VirtualKey("a" * 64, "sk-...aaaa", key_alias="Invoice-Agent", user_id="alice"))
        await tx.keys.insert(
            VirtualKey("b" * 64, "sk-...bbbb", key_alias="chat", user_id="bob", team_id="inv")
        )
        await tx.keys.insert(VirtualKey("c" * 64, "sk-...cccc", key_alias="other", user_id="carol"))
        await tx.keys.insert(VirtualKey("d" * 64, "sk-...dddd", key_alias="100%_done", user_id="dave"))
    async with store.transaction() as tx:
        found = await tx.keys.find(search=(("key_alias", "team_id"), "INV"))
        assert sorted(k.key_alias or "" for k in found) == ["Invoice-Agent", "chat"]
        assert await tx.keys.count(search=(("key_alias", "team_id"), "inv")) == 2
        assert await tx.keys.count({"user_id": "bob"}, search=(("key_alias",), "inv")) == 0
        # LIKE wildcards in the text are plain characters
        assert [k.key_alias for k in await tx.keys.find(search=(("key_alias",), "%_"))] == ["100%_done"]
        assert len(await tx.keys.find(search=(("key_alias",), ""))) == 4
        page = await tx.keys.find(search=(("user_id",), "a"), offset=1, limit=1)
        assert len(page) == 1


async def test_search_by_record_id(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.teams.insert(Team("team-finance", alias="Money people"))
        await tx.teams.insert(Team("team-legal", alias="Law"))
    async with store.transaction() as tx:
        assert [t.id for t in await tx.teams.find(search=(("alias", "id"), "finance"))] == ["team-finance"]
        assert [t.id for t in await tx.teams.find(search=(("alias", "id"), "LAW"))] == ["team-legal"]


async def test_spend_logs_status_filter(store: Store) -> None:
    rows = [
        SpendRow(f"r{i}", T0 + timedelta(seconds=i), T0 + timedelta(seconds=i, milliseconds=5),
                 model_group="m", spend=Decimal("0.001"), status_code=code)
        for i, code in enumerate((200, 429, 200, 500))
    ]
    await store.record_spend(rows)
    failed = await store.spend_logs({"status": "failure"})
    assert [r.request_id for r in failed] == ["r3", "r1"]
    ok = await store.spend_logs({"status": "success", "model_group": "m"})
    assert [r.request_id for r in ok] == ["r2", "r0"]
