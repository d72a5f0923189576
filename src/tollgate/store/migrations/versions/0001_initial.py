"""Initial schema: organisations, teams, users, memberships, virtual keys, deployments, usage
plans and the spend log.

Frozen: this revision spells out the tables as they were when it shipped, so it keeps creating
exactly those whatever ``sql_tables`` becomes later (later revisions change the schema).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from tollgate.store.sql_tables import Money

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

P = "tollgate_"


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _policy() -> list[sa.Column[Any]]:
    return [
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("input_tpm", sa.Integer),
        sa.Column("output_tpm", sa.Integer),
        sa.Column("max_parallel", sa.Integer),
        sa.Column("model_limits", sa.JSON, nullable=False),
        sa.Column("budgets", sa.JSON, nullable=False),
        sa.Column("max_budget", Money),
        sa.Column("budget_duration", sa.String(32)),
        sa.Column("budget_reset_at", _ts()),
        sa.Column("soft_budget", Money),
        sa.Column("spend", Money, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("blocked", sa.Boolean, nullable=False),
        sa.Column("created_at", _ts()),
        sa.Column("updated_at", _ts()),
    ]


def upgrade() -> None:
    op.create_table(
        f"{P}organizations",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("alias", sa.String(256)),
        *_policy(),
    )
    op.create_table(
        f"{P}teams",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("alias", sa.String(256)),
        sa.Column("org_id", sa.String(128), index=True),
        *_policy(),
    )
    op.create_table(
        f"{P}users",
        sa.Column("id", sa.String(256), primary_key=True),
        sa.Column("email", sa.String(320), index=True),
        sa.Column("alias", sa.String(256)),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("org_id", sa.String(128), index=True),
        *_policy(),
    )
    op.create_table(
        f"{P}team_memberships",
        sa.Column("team_id", sa.String(128), primary_key=True),
        sa.Column("user_id", sa.String(256), primary_key=True, index=True),
        sa.Column("role", sa.String(32), nullable=False),
    )
    op.create_table(
        f"{P}verification_tokens",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("key_name", sa.String(64), nullable=False),
        sa.Column("key_alias", sa.String(256), unique=True),
        sa.Column("user_id", sa.String(256), index=True),
        sa.Column("team_id", sa.String(128), index=True),
        sa.Column("org_id", sa.String(128), index=True),
        sa.Column("expires", _ts()),
        sa.Column("created_by", sa.String(256)),
        *_policy(),
    )
    op.create_table(
        f"{P}deployments",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("model_name", sa.String(256), nullable=False, index=True),
        sa.Column("litellm_params", sa.JSON, nullable=False),
        sa.Column("model_info", sa.JSON, nullable=False),
        sa.Column("created_at", _ts()),
        sa.Column("updated_at", _ts()),
    )
    op.create_table(
        f"{P}usage_plans",
        sa.Column("entity_type", sa.String(32), primary_key=True),
        sa.Column("entity_id", sa.String(256), primary_key=True),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("created_at", _ts()),
        sa.Column("updated_at", _ts()),
    )
    op.create_table(
        f"{P}spend_logs",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("api_key", sa.String(64), index=True),
        sa.Column("key_alias", sa.String(256)),
        sa.Column("user_id", sa.String(256), index=True),
        sa.Column("team_id", sa.String(128), index=True),
        sa.Column("org_id", sa.String(128)),
        sa.Column("model_group", sa.String(256), index=True),
        sa.Column("deployment_id", sa.String(128)),
        sa.Column("provider_model", sa.String(256)),
        sa.Column("started_at", _ts(), nullable=False),
        sa.Column("ended_at", _ts(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cache_read_tokens", sa.Integer, nullable=False),
        sa.Column("cache_write_tokens", sa.Integer, nullable=False),
        sa.Column("spend", Money, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("error_class", sa.String(128)),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.Column("client_format", sa.String(32)),
    )
    op.create_index(f"ix_{P}spend_logs_started_at", f"{P}spend_logs", ["started_at"])


def downgrade() -> None:
    for name in (
        "spend_logs", "usage_plans", "deployments", "verification_tokens", "team_memberships",
        "users", "teams", "organizations",
    ):
        op.drop_table(f"{P}{name}")
