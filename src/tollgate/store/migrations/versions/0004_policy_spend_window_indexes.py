"""Spend-log indexes for the spend of record: (entity column, started_at) for key, user, team and
org, so the sum of one entity's spend in one budget window is a range scan. They replace the
single-column indexes on api_key, user_id and team_id (a composite index serves every query those
did), so writes keep the same number of indexes plus one, for org_id.

Revision ID: policy_spend_window_indexes
Revises: admin_big_numbers
"""

from __future__ import annotations

from alembic import op

revision = "policy_spend_window_indexes"
down_revision = "admin_big_numbers"
branch_labels = None
depends_on = None

P = "tollgate_"
TABLE = f"{P}spend_logs"
REPLACED = ("api_key", "user_id", "team_id")
ENTITY_COLUMNS = ("api_key", "user_id", "team_id", "org_id")


def upgrade() -> None:
    for column in ENTITY_COLUMNS:
        op.create_index(f"ix_{TABLE}_{column}_started_at", TABLE, [column, "started_at"])
    for column in REPLACED:
        op.drop_index(f"ix_{TABLE}_{column}", table_name=TABLE)


def downgrade() -> None:
    for column in REPLACED:
        op.create_index(f"ix_{TABLE}_{column}", TABLE, [column])
    for column in ENTITY_COLUMNS:
        op.drop_index(f"ix_{TABLE}_{column}_started_at", table_name=TABLE)
