"""``ConversationStore`` in memory (``database_url: memory``, tests): lives as long as the process.

Each method runs without awaiting in the middle, so on one event loop an ``append`` is atomic,
as the SQL store's is by its row lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from tollgate.errors import Conflict, NotFound
from tollgate.store.conversations import SESSION_FILTERS, Json, NewTurn, SessionRecord, TurnRecord


class MemoryConversationStore:
    def __init__(self) -> None:
        self._sessions: dict[str, SessionRecord] = {}
        self._turns: dict[str, list[TurnRecord]] = {}

    async def create_session(self, session: SessionRecord) -> None:
        if session.id in self._sessions:
            raise Conflict(f"chat session '{session.id}' already exists")
        self._sessions[session.id] = session
        self._turns[session.id] = []

    async def session(self, session_id: str) -> SessionRecord | None:
        return self._sessions.get(session_id)

    async def turns(self, session_id: str, *, after_exchange: int = 0) -> list[TurnRecord]:
        return [t for t in self._turns.get(session_id, ()) if t.exchange > after_exchange]

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
        session = self._sessions.get(session_id)
        if session is None:
            raise NotFound(f"chat session '{session_id}' no longer exists")
        exchange = session.exchanges + 1
        self._sessions[session_id] = replace(
            session,
            exchanges=exchange,
            updated_at=at,
            system=session.system if system is None else system,
            model=session.model if model is None else model,
        )
        self._turns[session_id].extend(
            TurnRecord(session_id, exchange, position, turn.role, turn.message, at, request_id)
            for position, turn in enumerate(turns)
        )
        return exchange

    async def sessions(
        self, filters: Mapping[str, str] | None = None, *, offset: int = 0, limit: int = 100
    ) -> list[SessionRecord]:
        for name in filters or {}:
            if name not in SESSION_FILTERS:
                raise ValueError(f"chat sessions: unknown filter {name!r}")
        found = [
            s for s in self._sessions.values()
            if all(getattr(s, name) == value for name, value in (filters or {}).items())
        ]
        found.sort(key=lambda s: s.id)
        found.sort(key=lambda s: s.updated_at, reverse=True)
        return found[offset : offset + limit]

    async def delete_sessions(self, session_ids: Sequence[str]) -> list[str]:
        gone = []
        for session_id in dict.fromkeys(session_ids):
            if self._sessions.pop(session_id, None) is not None:
                self._turns.pop(session_id, None)
                gone.append(session_id)
        return gone

    async def delete_if_empty(self, session_id: str) -> bool:
        session = self._sessions.get(session_id)
        if session is None or session.exchanges:
            return False
        return bool(await self.delete_sessions([session_id]))

    async def purge(self, before: datetime) -> int:
        stale = [s.id for s in self._sessions.values() if s.updated_at < before]
        return len(await self.delete_sessions(stale))
