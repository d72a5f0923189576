"""The chat-history tables (SQLAlchemy Core), added to the store's one ``MetaData`` by
``sql_tables.build_metadata``: sessions, and one row per stored message (turn).
Imports nothing from tollgate.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, DateTime, Index, Integer, MetaData, String, Table

SESSIONS = "tollgate_chat_sessions"
TURNS = "tollgate_chat_turns"


def add_conversation_tables(meta: MetaData) -> None:
    sessions = Table(
        SESSIONS, meta,
        Column("id", String(128), primary_key=True),
        Column("owner_key", String(256), index=True),
        Column("owner_user", String(256), index=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Column("exchanges", Integer, nullable=False),
        Column("system", JSON),
        Column("model", String(256)),
    )
    Index(f"ix_{SESSIONS}_updated_at", sessions.c.updated_at)
    # The primary key (session, exchange, position) is the index history is read by.
    Table(
        TURNS, meta,
        Column("session_id", String(128), primary_key=True),
        Column("exchange", Integer, primary_key=True, autoincrement=False),
        Column("position", Integer, primary_key=True, autoincrement=False),
        Column("role", String(16), nullable=False),
        Column("message", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("request_id", String(128)),
    )
