"""Big numbers are data: entity limits become BIGINT and entity money NUMERIC(30, 12), so token
limits up to 10^15 and budgets up to 10^12 dollars round-trip on PostgreSQL (SQLite stores both
already: its INTEGER is 64-bit and money is text there).

Revision ID: admin_big_numbers
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tollgate.store.sql_tables import Money

revision = "admin_big_numbers"
down_revision = "0002"
branch_labels = None
depends_on = None

P = "tollgate_"
ENTITY_TABLES = ("organizations", "teams", "users", "verification_tokens")
LIMITS = ("rpm", "tpm", "input_tpm", "output_tpm", "max_parallel")
MONEY = ("max_budget", "soft_budget", "spend")


def _alter(integer: type[sa.Integer], precision: int) -> None:
    for table in ENTITY_TABLES:
        with op.batch_alter_table(f"{P}{table}") as batch:
            for name in LIMITS:
                batch.alter_column(name, type_=integer(), existing_nullable=True)
            for name in MONEY:
                batch.alter_column(name, type_=Money(precision), existing_nullable=name != "spend")


def upgrade() -> None:
    _alter(sa.BigInteger, 30)


def downgrade() -> None:
    _alter(sa.Integer, 20)
