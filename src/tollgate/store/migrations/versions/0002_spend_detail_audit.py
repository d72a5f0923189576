"""Spend-log detail (requested model, attempts, stream, first-token time, optional prompt and
response) and the audit log of admin writes.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

P = "tollgate_"
SPEND_COLUMNS = ("requested_model", "attempts", "stream", "completion_start_at", "messages", "response")


def upgrade() -> None:
    with op.batch_alter_table(f"{P}spend_logs") as batch:
        batch.add_column(sa.Column("requested_model", sa.String(256)))
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("stream", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("completion_start_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("messages", sa.JSON))
        batch.add_column(sa.Column("response", sa.JSON))
    op.create_table(
        f"{P}audit_logs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("target_id", sa.String(256)),
        sa.Column("actor_kind", sa.String(16)),
        sa.Column("actor_key", sa.String(256)),
        sa.Column("actor_user_id", sa.String(256)),
        sa.Column("actor_subject", sa.String(256)),
        sa.Column("actor_role", sa.String(32)),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("before", sa.JSON),
        sa.Column("after", sa.JSON),
    )
    op.create_index(f"ix_{P}audit_logs_created_at", f"{P}audit_logs", ["created_at"])
    op.create_index(f"ix_{P}audit_logs_action", f"{P}audit_logs", ["action"])
    op.create_index(f"ix_{P}audit_logs_target_id", f"{P}audit_logs", ["target_id"])


def downgrade() -> None:
    op.drop_table(f"{P}audit_logs")
    with op.batch_alter_table(f"{P}spend_logs") as batch:
        for name in SPEND_COLUMNS:
            batch.drop_column(name)
