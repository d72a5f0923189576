"""Chat history: sessions (owner, exchange count, system prompt) and one row per stored message.

Revision ID: conversations_history
Revises: policy_spend_window_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "conversations_history"
down_revision = "policy_spend_window_indexes"
branch_labels = None
depends_on = None

SESSIONS = "tollgate_chat_sessions"
TURNS = "tollgate_chat_turns"


def upgrade() -> None:
    op.create_table(
        SESSIONS,
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("owner_key", sa.String(256)),
        sa.Column("owner_user", sa.String(256)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("exchanges", sa.Integer, nullable=False),
        sa.Column("system", sa.JSON),
        sa.Column("model", sa.String(256)),
    )
    op.create_index(f"ix_{SESSIONS}_owner_key", SESSIONS, ["owner_key"])
    op.create_index(f"ix_{SESSIONS}_owner_user", SESSIONS, ["owner_user"])
    op.create_index(f"ix_{SESSIONS}_updated_at", SESSIONS, ["updated_at"])
    op.create_table(
        TURNS,
        sa.Column("session_id", sa.String(128), primary_key=True),
        sa.Column("exchange", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("message", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(128)),
    )


def downgrade() -> None:
    op.drop_table(TURNS)
    op.drop_table(SESSIONS)
