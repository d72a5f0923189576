"""Spend-log rows say whether the response cache answered (``cache_hit``, LiteLLM's column).

Revision ID: cache_hit
Revises: conversations_history
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "cache_hit"
down_revision = "conversations_history"
branch_labels = None
depends_on = None

P = "tollgate_"


def upgrade() -> None:
    with op.batch_alter_table(f"{P}spend_logs") as batch:
        batch.add_column(sa.Column("cache_hit", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table(f"{P}spend_logs") as batch:
        batch.drop_column("cache_hit")
