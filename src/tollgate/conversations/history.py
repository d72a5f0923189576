"""Chat history by session: start a session, load what a continuation sends upstream, record an
exchange, and the reads behind ``/chat-history``, ``/session-ids`` and the admin routes.

Order of a session's turns: exchanges are numbered when they are recorded (after the answer),
so they read in the order their answers completed. A continuation sends the exchanges recorded
before it started (a snapshot); two continuations running at once therefore do not see each
other, and both are kept, each user message next to its own answer.

What a continuation sends upstream is bounded: the newest ``max_turns`` exchanges, fewer if
their estimated tokens exceed ``max_tokens``; the oldest go first. Sessions inactive for
``retention_days`` are gone: refused as unknown at once, deleted by ``purge``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tollgate.auth.principal import Principal
from tollgate.canonical import ChatRequest, Message, TextPart
from tollgate.conversations.ownership import Owner, may_use, owner_of
from tollgate.conversations.turns import message_json, message_of, system_json, system_of
from tollgate.errors import NotFound, PermissionDenied
from tollgate.policy.tokens import REQUEST_OVERHEAD, estimate_input_tokens
from tollgate.store.conversations import ConversationStore, NewTurn, SessionRecord, TurnRecord


@dataclass(frozen=True, slots=True)
class HistorySettings:
    """``general_settings.chat_history_*``; ``None`` means no limit."""

    retention_days: float | None = 30.0
    max_turns: int | None = 50  # exchanges (a request's messages and their answer) sent upstream
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Transcript:
    """A session's stored conversation: its system prompt and messages, oldest first."""

    session: SessionRecord
    system: tuple[TextPart, ...]
    messages: tuple[Message, ...]


class History:
    def __init__(
        self,
        store: ConversationStore,
        settings: HistorySettings = HistorySettings(),
        *,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._store = store
        self.settings = settings
        self._clock = clock
        self._new_id = new_id

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def start(self, principal: Principal, model: str) -> SessionRecord:
        """A new, empty session owned by the caller. It exists from now on, so its id is valid
        as soon as a client has it (a boto3 stream hands it over before the answer ends)."""
        owner = owner_of(principal)
        now = self._now()
        session = SessionRecord(self._new_id(), owner.key, owner.user, now, now, model=model)
        await self._store.create_session(session)
        return session

    async def continuation(self, principal: Principal, session_id: str) -> Transcript:
        """What a continuation sends before its own messages: the session's newest exchanges,
        within the turn and token caps. Refuses unknown, expired and foreign sessions."""
        session = await self._owned(owner_of(principal), session_id)
        cap = self.settings.max_turns
        after = max(session.exchanges - cap, 0) if cap is not None else 0
        turns = await self._store.turns(session.id, after_exchange=after)
        return Transcript(session, system_of(session.system), self._within_budget(turns))

    async def record(
        self,
        session_id: str,
        request: ChatRequest,
        answer: Message,
        *,
        new_messages: Sequence[Message],
        request_id: str | None,
    ) -> int:
        turns = [NewTurn(m.role, message_json(m)) for m in (*new_messages, answer)]
        system = system_json(request.system) if request.system else None
        return await self._store.append(
            session_id, turns, at=self._now(), system=system, model=request.model, request_id=request_id
        )

    async def forget_if_empty(self, session_id: str) -> None:
        """A session started by a request that failed before its answer: it never existed."""
        await self._store.delete_if_empty(session_id)

    async def transcript(self, principal: Principal, session_id: str) -> Transcript:
        """The whole stored conversation, for its owners (``/chat-history``)."""
        session = await self._owned(owner_of(principal), session_id)
        return await self._transcript(session)

    async def session_ids(self, principal: Principal) -> list[str]:
        """The calling key's sessions, newest activity first (``/session-ids``)."""
        owner = owner_of(principal)
        filters = {"owner_key": owner.key} if owner.key is not None else {"owner_user": owner.user or ""}
        sessions: list[SessionRecord] = []
        while True:
            page = await self._store.sessions(filters, offset=len(sessions), limit=1000)
            sessions.extend(s for s in page if not self._expired(s))
            if len(page) < 1000:
                return [s.id for s in sessions]

    async def admin_transcript(self, session_id: str) -> Transcript:
        session = await self._store.session(session_id)
        if session is None or self._expired(session):
            raise NotFound(f"chat session '{session_id}' not found")
        return await self._transcript(session)

    async def admin_sessions(
        self, *, owner_key: str | None, owner_user: str | None, offset: int, limit: int
    ) -> list[SessionRecord]:
        filters = {k: v for k, v in (("owner_key", owner_key), ("owner_user", owner_user)) if v}
        return await self._store.sessions(filters, offset=offset, limit=limit)

    async def delete(self, session_ids: Sequence[str]) -> list[str]:
        return await self._store.delete_sessions(session_ids)

    async def purge(self) -> int:
        """Delete the sessions past retention; returns how many."""
        if self.settings.retention_days is None:
            return 0
        return await self._store.purge(self._now() - timedelta(days=self.settings.retention_days))

    async def _owned(self, owner: Owner, session_id: str) -> SessionRecord:
        session = await self._store.session(session_id)
        if session is None or self._expired(session):
            raise NotFound(f"chat session '{session_id}' not found")
        if not may_use(owner, session):
            raise PermissionDenied(
                f"chat session '{session_id}' belongs to another key; only its key and that key's "
                "user may use it"
            )
        return session

    def _expired(self, session: SessionRecord) -> bool:
        days = self.settings.retention_days
        return days is not None and session.updated_at < self._now() - timedelta(days=days)

    async def _transcript(self, session: SessionRecord) -> Transcript:
        turns = await self._store.turns(session.id)
        messages = tuple(message_of(t.message) for t in turns)
        return Transcript(session, system_of(session.system), messages)

    def _within_budget(self, turns: Sequence[TurnRecord]) -> tuple[Message, ...]:
        exchanges: list[list[Message]] = []
        last = None
        for turn in turns:
            if turn.exchange != last:
                exchanges.append([])
                last = turn.exchange
            exchanges[-1].append(message_of(turn.message))
        budget = self.settings.max_tokens
        if budget is not None:
            sizes = [
                estimate_input_tokens(ChatRequest("", tuple(group))) - REQUEST_OVERHEAD for group in exchanges
            ]
            while exchanges and sum(sizes) > budget:
                exchanges.pop(0)
                sizes.pop(0)
        return tuple(m for group in exchanges for m in group)
