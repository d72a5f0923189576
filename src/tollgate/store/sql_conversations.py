"""``ConversationStore`` over the SQL store's engine (SQLite, PostgreSQL).

``append`` numbers the exchange with one ``UPDATE … SET exchanges = exchanges + 1 RETURNING``:
PostgreSQL locks the session row until the transaction commits and SQLite serialises writers,
so concurrent appends to one session get consecutive numbers and all their turns are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tollgate.errors import Conflict, NotFound
from tollgate.store.conversation_tables import SESSIONS, TURNS
from tollgate.store.conversations import (
    SESSION_FILTERS,
    Json,
    NewTurn,
    SessionRecord,
    TurnRecord,
)
from tollgate.store.sql_rows import utc
from tollgate.store.sql_tables import METADATA

_S = METADATA.tables[SESSIONS]
_T = METADATA.tables[TURNS]
_PURGE_BATCH = 500  # ids per DELETE … IN (…): well under SQLite's bound-parameter limit


def _session_of(row: Mapping[Any, Any]) -> SessionRecord:
    return SessionRecord(
        id=row["id"],
        owner_key=row["owner_key"],
        owner_user=row["owner_user"],
        created_at=utc(row["created_at"]) or row["created_at"],
        updated_at=utc(row["updated_at"]) or row["updated_at"],
        exchanges=int(row["exchanges"]),
        system=row["system"],
        model=row["model"],
    )


def _turn_of(row: Mapping[Any, Any]) -> TurnRecord:
    return TurnRecord(
        session_id=row["session_id"],
        exchange=int(row["exchange"]),
        position=int(row["position"]),
        role=row["role"],
        message=row["message"],
        created_at=utc(row["created_at"]) or row["created_at"],
        request_id=row["request_id"],
    )


class SqlConversationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_session(self, session: SessionRecord) -> None:
        values = {
            "id": session.id, "owner_key": session.owner_key, "owner_user": session.owner_user,
            "created_at": session.created_at, "updated_at": session.updated_at,
            "exchanges": session.exchanges, "system": session.system, "model": session.model,
        }
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(_S).values(**values))
        except IntegrityError:
            raise Conflict(f"chat session '{session.id}' already exists") from None

    async def session(self, session_id: str) -> SessionRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(_S).where(_S.c.id == session_id))).mappings().first()
        return None if row is None else _session_of(row)

    async def turns(self, session_id: str, *, after_exchange: int = 0) -> list[TurnRecord]:
        query = (
            select(_T)
            .where(_T.c.session_id == session_id, _T.c.exchange > after_exchange)
            .order_by(_T.c.exchange, _T.c.position)
        )
        async with self._engine.connect() as conn:
            return [_turn_of(row) for row in (await conn.execute(query)).mappings()]

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
        values: dict[str, Any] = {"exchanges": _S.c.exchanges + 1, "updated_at": at}
        if system is not None:
            values["system"] = system
        if model is not None:
            values["model"] = model
        async with self._engine.begin() as conn:
            numbered = await conn.execute(
                update(_S).where(_S.c.id == session_id).values(**values).returning(_S.c.exchanges)
            )
            exchange = numbered.scalar_one_or_none()
            if exchange is None:
                raise NotFound(f"chat session '{session_id}' no longer exists")
            if turns:
                rows = [
                    {
                        "session_id": session_id, "exchange": exchange, "position": position,
                        "role": turn.role, "message": turn.message, "created_at": at,
                        "request_id": request_id,
                    }
                    for position, turn in enumerate(turns)
                ]
                await conn.execute(insert(_T), rows)
            return int(exchange)

    async def sessions(
        self, filters: Mapping[str, str] | None = None, *, offset: int = 0, limit: int = 100
    ) -> list[SessionRecord]:
        query = select(_S)
        for name, value in (filters or {}).items():
            if name not in SESSION_FILTERS:
                raise ValueError(f"chat sessions: unknown filter {name!r}")
            query = query.where(_S.c[name] == value)
        query = query.order_by(_S.c.updated_at.desc(), _S.c.id).offset(offset).limit(limit)
        async with self._engine.connect() as conn:
            return [_session_of(row) for row in (await conn.execute(query)).mappings()]

    async def delete_sessions(self, session_ids: Sequence[str]) -> list[str]:
        gone: list[str] = []
        async with self._engine.begin() as conn:
            for session_id in dict.fromkeys(session_ids):
                if await _delete(conn, session_id):
                    gone.append(session_id)
        return gone

    async def delete_if_empty(self, session_id: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(_S).where(_S.c.id == session_id, _S.c.exchanges == 0))
            return bool(result.rowcount)

    async def purge(self, before: datetime) -> int:
        # Sessions first: one continued meanwhile is no longer stale and keeps all its turns.
        async with self._engine.begin() as conn:
            gone = await conn.execute(delete(_S).where(_S.c.updated_at < before).returning(_S.c.id))
            ids = list(gone.scalars())
            for start in range(0, len(ids), _PURGE_BATCH):
                await conn.execute(delete(_T).where(_T.c.session_id.in_(ids[start : start + _PURGE_BATCH])))
            return len(ids)


async def _delete(conn: AsyncConnection, session_id: str) -> bool:
    await conn.execute(delete(_T).where(_T.c.session_id == session_id))
    result = await conn.execute(delete(_S).where(_S.c.id == session_id))
    return bool(result.rowcount)
