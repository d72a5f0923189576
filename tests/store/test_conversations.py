"""The chat-history store suite, run against the in-memory store, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tollgate.errors import Conflict, NotFound
from tollgate.store import Store
from tollgate.store.conversations import ConversationStore, NewTurn, SessionRecord
from tollgate.store.memory_conversations import MemoryConversationStore
from tollgate.store.sql import SqlStore
from tollgate.store.sql_conversations import SqlConversationStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def turns(store: Store) -> ConversationStore:
    return SqlConversationStore(store.engine) if isinstance(store, SqlStore) else MemoryConversationStore()


def _session(
    session_id: str, *, key: str = "k1", user: str | None = "u1", at: datetime = T0
) -> SessionRecord:
    return SessionRecord(session_id, key, user, at, at)


def _pair(text: str) -> list[NewTurn]:
    return [
        NewTurn("user", {"role": "user", "text": text}),
        NewTurn("assistant", {"role": "assistant", "text": f"re {text}"}),
    ]


async def test_sessions_are_created_once_and_read_back(turns: ConversationStore) -> None:
    await turns.create_session(_session("s1"))
    with pytest.raises(Conflict):
        await turns.create_session(_session("s1"))
    assert await turns.session("s1") == _session("s1")
    assert await turns.session("nope") is None


async def test_exchanges_are_numbered_and_their_turns_kept_in_order(turns: ConversationStore) -> None:
    await turns.create_session(_session("s1"))
    assert await turns.append("s1", _pair("one"), at=T0 + timedelta(seconds=1), model="m1") == 1
    system = [{"kind": "text", "text": "be brief"}]
    assert (
        await turns.append("s1", _pair("two"), at=T0 + timedelta(seconds=2), system=system, request_id="r2")
        == 2
    )
    stored = await turns.turns("s1")
    assert [(t.exchange, t.position, t.role, t.message["text"]) for t in stored] == [
        (1, 0, "user", "one"),
        (1, 1, "assistant", "re one"),
        (2, 0, "user", "two"),
        (2, 1, "assistant", "re two"),
    ]
    assert stored[-1].request_id == "r2"
    assert [t.message["text"] for t in await turns.turns("s1", after_exchange=1)] == ["two", "re two"]
    session = await turns.session("s1")
    assert session is not None
    assert (session.exchanges, session.system, session.model) == (2, system, "m1")
    assert session.updated_at == T0 + timedelta(seconds=2)


async def test_appending_to_a_missing_session_is_not_found(turns: ConversationStore) -> None:
    with pytest.raises(NotFound):
        await turns.append("gone", _pair("x"), at=T0)


async def test_concurrent_appends_lose_no_turn_and_never_interleave(turns: ConversationStore) -> None:
    await turns.create_session(_session("s1"))
    numbers = await asyncio.gather(*(turns.append("s1", _pair(str(i)), at=T0) for i in range(12)))
    assert sorted(numbers) == list(range(1, 13))
    stored = await turns.turns("s1")
    assert len(stored) == 24
    for first, second in zip(stored[::2], stored[1::2], strict=True):
        assert first.exchange == second.exchange
        assert second.message["text"] == f"re {first.message['text']}"
    by_number = {t.exchange: t.message["text"] for t in stored if t.role == "user"}
    assert {by_number[n] for n in numbers} == {str(i) for i in range(12)}
    session = await turns.session("s1")
    assert session is not None and session.exchanges == 12


async def test_sessions_are_listed_by_owner_newest_first(turns: ConversationStore) -> None:
    await turns.create_session(_session("old", at=T0))
    await turns.create_session(_session("new", at=T0 + timedelta(hours=1)))
    await turns.create_session(_session("theirs", key="k2", user="u2"))
    await turns.append("old", _pair("x"), at=T0 + timedelta(hours=2))  # now the most recent
    assert [s.id for s in await turns.sessions({"owner_key": "k1"})] == ["old", "new"]
    assert [s.id for s in await turns.sessions({"owner_user": "u2"})] == ["theirs"]
    assert [s.id for s in await turns.sessions({"owner_key": "k1"}, offset=1, limit=1)] == ["new"]
    with pytest.raises(ValueError):
        await turns.sessions({"model": "x"})


async def test_delete_and_delete_if_empty(turns: ConversationStore) -> None:
    await turns.create_session(_session("empty"))
    await turns.create_session(_session("used"))
    await turns.append("used", _pair("x"), at=T0)
    assert not await turns.delete_if_empty("used")
    assert await turns.delete_if_empty("empty")
    assert await turns.session("empty") is None
    assert await turns.delete_sessions(["used", "used", "nope"]) == ["used"]
    assert await turns.turns("used") == []


async def test_purge_removes_stale_sessions_with_their_turns(turns: ConversationStore) -> None:
    await turns.create_session(_session("stale", at=T0))
    await turns.create_session(_session("fresh", at=T0))
    await turns.append("stale", _pair("x"), at=T0 + timedelta(days=1))
    await turns.append("fresh", _pair("y"), at=T0 + timedelta(days=40))
    assert await turns.purge(T0 + timedelta(days=30)) == 1
    assert await turns.session("stale") is None
    assert await turns.turns("stale") == []
    assert [t.message["text"] for t in await turns.turns("fresh")] == ["y", "re y"]
