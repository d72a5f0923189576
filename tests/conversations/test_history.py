"""Chat history's rules with plain values: ownership, retention by an injected clock, the turn
and token caps, and what a failed first request leaves behind (nothing)."""

from __future__ import annotations

import pytest

from tollgate.auth.principal import MASTER, Principal
from tollgate.canonical import ChatRequest, Message, TextPart
from tollgate.conversations.history import History, HistorySettings
from tollgate.errors import NotFound, PermissionDenied
from tollgate.store.memory_conversations import MemoryConversationStore

ALICE = Principal(kind="key", key_hash="hash-a1", user_id="alice")
ALICE_OTHER_KEY = Principal(kind="key", key_hash="hash-a2", user_id="alice")
BOB = Principal(kind="key", key_hash="hash-b1", user_id="bob")
LONE_KEY = Principal(kind="key", key_hash="hash-lone")
DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _history(**settings: object) -> tuple[History, Clock]:
    clock = Clock()
    counter = iter(range(1000))
    history = History(
        MemoryConversationStore(),
        HistorySettings(**settings),  # type: ignore[arg-type]
        clock=clock,
        new_id=lambda: f"s{next(counter)}",
    )
    return history, clock


def _user(text: str) -> Message:
    return Message("user", (TextPart(text),))


async def _exchange(history: History, session_id: str, text: str) -> None:
    request = ChatRequest("m", (_user(text),))
    answer = Message("assistant", (TextPart(f"re {text}"),))
    await history.record(session_id, request, answer, new_messages=request.messages, request_id=None)


def _texts(messages: tuple[Message, ...]) -> list[str]:
    return [p.text for m in messages for p in m.parts if isinstance(p, TextPart)]


async def test_the_owning_key_and_its_users_other_keys_may_use_a_session() -> None:
    history, _ = _history()
    session = await history.start(ALICE, "m")
    await _exchange(history, session.id, "hi")
    for caller in (ALICE, ALICE_OTHER_KEY):
        assert _texts((await history.continuation(caller, session.id)).messages) == ["hi", "re hi"]
        assert _texts((await history.transcript(caller, session.id)).messages) == ["hi", "re hi"]
    with pytest.raises(PermissionDenied) as info:
        await history.continuation(BOB, session.id)
    assert "hi" not in info.value.message
    with pytest.raises(PermissionDenied):
        await history.transcript(MASTER, session.id)  # admins read through the admin routes
    with pytest.raises(NotFound):
        await history.continuation(ALICE, "no-such-session")


async def test_a_key_without_a_user_shares_with_nobody() -> None:
    history, _ = _history()
    session = await history.start(LONE_KEY, "m")
    with pytest.raises(PermissionDenied):
        await history.transcript(Principal(kind="key", key_hash="hash-other"), session.id)
    assert await history.session_ids(LONE_KEY) == [session.id]


async def test_the_master_key_owns_its_sessions() -> None:
    history, _ = _history()
    session = await history.start(MASTER, "m")
    assert await history.session_ids(MASTER) == [session.id]
    assert await history.session_ids(ALICE) == []


async def test_session_ids_are_the_calling_keys_newest_first() -> None:
    history, clock = _history()
    first = await history.start(ALICE, "m")
    clock.now += 10
    second = await history.start(ALICE, "m")
    await history.start(ALICE_OTHER_KEY, "m")
    assert await history.session_ids(ALICE) == [second.id, first.id]


async def test_sessions_past_retention_are_gone_and_purged() -> None:
    history, clock = _history(retention_days=30.0)
    session = await history.start(ALICE, "m")
    await _exchange(history, session.id, "hi")
    clock.now += 29 * DAY
    await history.continuation(ALICE, session.id)
    assert await history.purge() == 0
    clock.now += 2 * DAY
    with pytest.raises(NotFound):
        await history.continuation(ALICE, session.id)
    assert await history.session_ids(ALICE) == []
    assert await history.purge() == 1
    with pytest.raises(NotFound):
        await history.admin_transcript(session.id)


async def test_activity_extends_retention() -> None:
    history, clock = _history(retention_days=30.0)
    session = await history.start(ALICE, "m")
    clock.now += 20 * DAY
    await _exchange(history, session.id, "still here")
    clock.now += 20 * DAY
    assert _texts((await history.continuation(ALICE, session.id)).messages) == ["still here", "re still here"]


async def test_the_turn_cap_drops_the_oldest_exchanges_first() -> None:
    history, _ = _history(max_turns=2)
    session = await history.start(ALICE, "m")
    for text in ("one", "two", "three"):
        await _exchange(history, session.id, text)
    assert _texts((await history.continuation(ALICE, session.id)).messages) == [
        "two",
        "re two",
        "three",
        "re three",
    ]
    # The whole conversation stays readable.
    assert len((await history.transcript(ALICE, session.id)).messages) == 6


async def test_the_token_budget_drops_whole_exchanges_oldest_first() -> None:
    history, _ = _history(max_turns=None, max_tokens=30)
    session = await history.start(ALICE, "m")
    for text in ("a" * 40, "b" * 8, "c" * 8):
        await _exchange(history, session.id, text)
    assert _texts((await history.continuation(ALICE, session.id)).messages) == [
        "b" * 8,
        "re " + "b" * 8,
        "c" * 8,
        "re " + "c" * 8,
    ]


async def test_a_failed_first_request_leaves_no_session() -> None:
    history, _ = _history()
    session = await history.start(ALICE, "m")
    await history.forget_if_empty(session.id)
    assert await history.session_ids(ALICE) == []
    used = await history.start(ALICE, "m")
    await _exchange(history, used.id, "hi")
    await history.forget_if_empty(used.id)
    assert await history.session_ids(ALICE) == [used.id]


async def test_the_system_prompt_is_kept_with_the_session() -> None:
    history, _ = _history()
    session = await history.start(ALICE, "m")
    request = ChatRequest("m", (_user("hi"),), system=(TextPart("be brief"),))
    answer = Message("assistant", (TextPart("ok"),))
    await history.record(session.id, request, answer, new_messages=request.messages, request_id="r1")
    assert (await history.continuation(ALICE, session.id)).system == (TextPart("be brief"),)
