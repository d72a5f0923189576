"""The SQL schema (SQLAlchemy Core tables); ``sql_rows`` maps their rows to ``records``.

One table per record kind. Every tenant entity table repeats the same policy columns
(``policy_columns``). Money is ``Money``: NUMERIC(20, 12) where the database has exact decimals,
text on SQLite (whose NUMERIC is a float), so a dollar amount reads back exactly as written.
Imports only ``store.records``, ``store.conversation_tables`` and ``store.rollup_tables``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    false,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from tollgate.store.conversation_tables import add_conversation_tables
from tollgate.store.rollup_tables import add_rollup_tables

PREFIX = "tollgate_"


class Money(TypeDecorator[Decimal]):
    """Exact dollars: NUMERIC(precision, 12), or its decimal string on SQLite."""

    impl = Numeric(20, 12, asdecimal=True)
    cache_ok = True

    def __init__(self, precision: int = 20) -> None:
        super().__init__()
        self.precision = precision

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(self.precision, 12, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return format(value, "f") if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))


def _ts() -> DateTime:
    return DateTime(timezone=True)


# Limits are BIGINT and policy money NUMERIC(30, 12): the admin API accepts token limits up to
# 10^15 and dollar amounts up to 10^12 (admin/requests.py), which INTEGER and NUMERIC(20, 12) overflow.
POLICY_MONEY_PRECISION = 30
LIMIT_COLUMNS = ("rpm", "tpm", "input_tpm", "output_tpm", "max_parallel")
POLICY_MONEY_COLUMNS = ("max_budget", "soft_budget", "spend")


def policy_columns() -> list[Column[Any]]:
    money = Money(POLICY_MONEY_PRECISION)
    return [
        Column("models", JSON, nullable=False),
        *(Column(name, BigInteger) for name in LIMIT_COLUMNS),
        Column("model_limits", JSON, nullable=False),
        Column("budgets", JSON, nullable=False),
        Column("max_budget", money),
        Column("budget_duration", String(32)),
        Column("budget_reset_at", _ts()),
        Column("soft_budget", money),
        Column("spend", money, nullable=False),
        Column("metadata", JSON, nullable=False),
        Column("tags", JSON, nullable=False),
        Column("blocked", Boolean, nullable=False),
        Column("created_at", _ts()),
        Column("updated_at", _ts()),
    ]


def build_metadata() -> MetaData:
    meta = MetaData()
    Table(
        f"{PREFIX}organizations", meta,
        Column("id", String(128), primary_key=True),
        Column("alias", String(256)),
        *policy_columns(),
    )
    Table(
        f"{PREFIX}teams", meta,
        Column("id", String(128), primary_key=True),
        Column("alias", String(256)),
        Column("org_id", String(128), index=True),
        *policy_columns(),
    )
    Table(
        f"{PREFIX}users", meta,
        Column("id", String(256), primary_key=True),
        Column("email", String(320), index=True),
        Column("alias", String(256)),
        Column("role", String(32), nullable=False),
        Column("org_id", String(128), index=True),
        *policy_columns(),
    )
    Table(
        f"{PREFIX}team_memberships", meta,
        Column("team_id", String(128), primary_key=True),
        Column("user_id", String(256), primary_key=True, index=True),
        Column("role", String(32), nullable=False),
    )
    Table(
        f"{PREFIX}verification_tokens", meta,
        Column("token", String(64), primary_key=True),
        Column("key_name", String(64), nullable=False),
        Column("key_alias", String(256), unique=True),
        Column("user_id", String(256), index=True),
        Column("team_id", String(128), index=True),
        Column("org_id", String(128), index=True),
        Column("expires", _ts()),
        Column("created_by", String(256)),
        *policy_columns(),
    )
    Table(
        f"{PREFIX}deployments", meta,
        Column("id", String(128), primary_key=True),
        Column("model_name", String(256), nullable=False, index=True),
        Column("litellm_params", JSON, nullable=False),
        Column("model_info", JSON, nullable=False),
        Column("created_at", _ts()),
        Column("updated_at", _ts()),
    )
    Table(
        f"{PREFIX}usage_plans", meta,
        Column("entity_type", String(32), primary_key=True),
        Column("entity_id", String(256), primary_key=True),
        Column("document", JSON, nullable=False),
        Column("created_at", _ts()),
        Column("updated_at", _ts()),
    )
    spend = Table(
        f"{PREFIX}spend_logs", meta,
        Column("request_id", String(128), primary_key=True),
        Column("api_key", String(64)),
        Column("key_alias", String(256)),
        Column("user_id", String(256)),
        Column("team_id", String(128)),
        Column("org_id", String(128)),
        Column("model_group", String(256)),
        Column("deployment_id", String(128)),
        Column("provider_model", String(256)),
        Column("started_at", _ts(), nullable=False),
        Column("ended_at", _ts(), nullable=False),
        Column("prompt_tokens", Integer, nullable=False),
        Column("completion_tokens", Integer, nullable=False),
        Column("cache_read_tokens", Integer, nullable=False),
        Column("cache_write_tokens", Integer, nullable=False),
        Column("spend", Money, nullable=False),
        Column("status_code", Integer, nullable=False),
        Column("error_class", String(128)),
        Column("tags", JSON, nullable=False),
        Column("metadata", JSON, nullable=False),
        Column("client_format", String(32)),
        Column("requested_model", String(256)),
        Column("attempts", Integer, nullable=False, server_default="1"),
        Column("stream", Boolean, nullable=False, server_default=false()),
        Column("cache_hit", Boolean, nullable=False, server_default=false()),
        Column("completion_start_at", _ts()),
        Column("messages", JSON),
        Column("response", JSON),
    )
    Index(f"ix_{PREFIX}spend_logs_started_at", spend.c.started_at)
    for column in ("api_key", "user_id", "team_id", "org_id", "model_group"):
        # Budget windows of one entity (the spend of record) and the spend log filtered by it,
        # newest first (keyset pages walk these backwards).
        Index(f"ix_{PREFIX}spend_logs_{column}_started_at", spend.c[column], spend.c.started_at)
    audit = Table(
        f"{PREFIX}audit_logs", meta,
        Column("id", String(64), primary_key=True),
        Column("created_at", _ts(), nullable=False),
        Column("action", String(128), nullable=False),
        Column("target_id", String(256)),
        Column("actor_kind", String(16)),
        Column("actor_key", String(256)),
        Column("actor_user_id", String(256)),
        Column("actor_subject", String(256)),
        Column("actor_role", String(32)),
        Column("status_code", Integer, nullable=False),
        Column("before", JSON),
        Column("after", JSON),
    )
    Index(f"ix_{PREFIX}audit_logs_created_at", audit.c.created_at)
    Index(f"ix_{PREFIX}audit_logs_action", audit.c.action)
    Index(f"ix_{PREFIX}audit_logs_target_id", audit.c.target_id)
    add_conversation_tables(meta)
    add_rollup_tables(meta, Money(POLICY_MONEY_PRECISION))
    return meta


METADATA = build_metadata()
T = METADATA.tables
