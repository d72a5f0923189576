"""Chat history's persistence: sessions and their turns, the protocol and its records.

A session row says who owns the conversation and how many exchanges it holds; each turn is one
message, stored once and never rewritten (one row per message, keyed by session, exchange number
and position in the exchange). An exchange is what one successful request adds: the request's
new messages and the assistant's answer. ``append`` numbers exchanges atomically, so two requests
continuing one session at once each get their own number and neither loses a turn.
``sql_conversations.SqlConversationStore`` and ``memory_conversations.MemoryConversationStore``
implement it. Messages travel as JSON values; their meaning is the ``conversations`` package's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

Json = Any


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: str
    owner_key: str | None  # the owning key's identity (its hash; "master" for the master key)
    owner_user: str | None  # the owning key's user, whose other keys share the session
    created_at: datetime
    updated_at: datetime  # the last exchange (or creation); retention counts from here
    exchanges: int = 0
    system: Json = None  # the system prompt in force, as stored JSON parts
    model: str | None = None  # the model named by the last exchange


@dataclass(frozen=True, slots=True)
class TurnRecord:
    session_id: str
    exchange: int  # 1, 2, … in the order the exchanges were recorded
    position: int  # 0, 1, … within the exchange
    role: str
    message: Json
    created_at: datetime
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewTurn:
    role: str
    message: Json


class ConversationStore(Protocol):
    async def create_session(self, session: SessionRecord) -> None:
        """Add a session; ``errors.Conflict`` if its id is taken."""

    async def session(self, session_id: str) -> SessionRecord | None: ...

    async def turns(self, session_id: str, *, after_exchange: int = 0) -> list[TurnRecord]:
        """The session's turns of exchanges numbered above ``after_exchange``, in order."""

    async def append(
        self,
        session_id: str,
        turns: Sequence[NewTurn],
        *,
        at: datetime,
        system: Json = None,
        model: str | None = None,
        request_id: str | None = None,
    ) -> int:
        """Record one exchange after every exchange recorded before it; returns its number.
        ``system`` (when not None) replaces the session's system prompt. ``errors.NotFound``
        if the session is gone (deleted or purged meanwhile)."""

    async def sessions(
        self, filters: Mapping[str, str] | None = None, *, offset: int = 0, limit: int = 100
    ) -> list[SessionRecord]:
        """Newest activity first; filters: ``owner_key``, ``owner_user``."""

    async def delete_sessions(self, session_ids: Sequence[str]) -> list[str]:
        """Remove sessions with their turns; returns the ids that existed."""

    async def delete_if_empty(self, session_id: str) -> bool:
        """Remove the session if no exchange was recorded in it (a first request that failed)."""

    async def purge(self, before: datetime) -> int:
        """Remove sessions last active before ``before``, with their turns; returns how many."""


SESSION_FILTERS = ("owner_key", "owner_user")
