"""Spend rollups: the spend log summed per hour and per UTC day for several views (the proxy, each
key, user, team, org, model and tag, and daily a cube of key × user × team × org × model), so the
spend reports read sums instead of scanning the log (``store/rollup_tables.py``). The tables are
filled from the rows already logged (``store/rollups.rebuild``), so an upgraded database reports
the same totals as before. The spend log's model index becomes (model_group, started_at), like the
entity indexes, so a model filter pages newest-first from the index.

Revision ID: spend_rollups
Revises: cache_hit
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "spend_rollups"
down_revision = "cache_hit"
branch_labels = None
depends_on = None

SPEND = "tollgate_spend_logs"
HOURLY = "tollgate_spend_hourly"
DAILY = "tollgate_spend_daily"
MEASURES = (
    "requests", "failed_requests", "prompt_tokens", "completion_tokens", "cache_read_tokens",
    "cache_write_tokens", "cache_hits",
)


def _money() -> sa.types.TypeEngine[Any]:
    if op.get_bind().dialect.name == "sqlite":
        return sa.String(48)
    return sa.Numeric(30, 12)


def _create(name: str) -> None:
    op.create_table(
        name,
        sa.Column("view", sa.String(8), primary_key=True),
        sa.Column("api_key", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(256), primary_key=True),
        sa.Column("team_id", sa.String(128), primary_key=True),
        sa.Column("org_id", sa.String(128), primary_key=True),
        sa.Column("model_group", sa.String(256), primary_key=True),
        sa.Column("tag", sa.String(256), primary_key=True),
        sa.Column("bucket", sa.DateTime(timezone=True), primary_key=True),
        *(sa.Column(m, sa.BigInteger, nullable=False) for m in MEASURES),
        sa.Column("spend", _money(), nullable=False),
    )
    op.create_index(f"ix_{name}_view_bucket", name, ["view", "bucket"])


def upgrade() -> None:
    from tollgate.store.rollups import rebuild

    _create(HOURLY)
    _create(DAILY)
    for column in ("user_id", "team_id", "org_id", "model_group"):
        op.create_index(f"ix_{DAILY}_view_{column}_bucket", DAILY, ["view", column, "bucket"])
    op.create_index(f"ix_{SPEND}_model_group_started_at", SPEND, ["model_group", "started_at"])
    op.drop_index(f"ix_{SPEND}_model_group", table_name=SPEND)
    # The rollups as of now. Later revisions that change the rollup tables rebuild them again.
    rebuild(op.get_bind())


def downgrade() -> None:
    op.create_index(f"ix_{SPEND}_model_group", SPEND, ["model_group"])
    op.drop_index(f"ix_{SPEND}_model_group_started_at", table_name=SPEND)
    op.drop_table(DAILY)
    op.drop_table(HOURLY)
