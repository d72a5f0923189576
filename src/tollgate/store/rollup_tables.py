"""The spend rollup tables (SQLAlchemy Core), added to the store's one ``MetaData`` by
``sql_tables.build_metadata``: the spend log summed per hour (``tollgate_spend_hourly``) and per
UTC day (``tollgate_spend_daily``), for several *views* at once.

A view is a set of dimensions (``VIEWS``): ``all`` (no dimension: the whole proxy), one entity or
attribute (``key``, ``user``, ``team``, ``org``, ``model``, ``tag``) or, daily only, ``cube``: key,
user, team, org and model together, which answers any filter and grouping over those five (a key
belongs to one user, team and org, so the cube has about one row per key, model and day). Both
tables have the same columns: the view, one column per dimension (``''`` where the view does not
have it, or the spend row had none: primary-key columns cannot be NULL), the bucket (start of the
hour or day, UTC) and the sums. Money is ``Money`` (NUMERIC on PostgreSQL, exact text on SQLite).

The primary key (view, dimensions…, bucket) makes one entity's window a range scan; the extra
indexes serve the cube filtered by one dimension and every view over a time range.
Imports nothing from tollgate (``sql_tables`` hands in its money type).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, MetaData, String, Table
from sqlalchemy.types import TypeEngine

HOURLY = "tollgate_spend_hourly"
DAILY = "tollgate_spend_daily"
# Dimension columns of the rollups, in primary-key order (after the view).
DIMENSIONS = ("api_key", "user_id", "team_id", "org_id", "model_group", "tag")
ENTITY_DIMENSIONS = DIMENSIONS[:5]
# The sums kept per bucket.
MEASURES = (
    "requests", "failed_requests", "prompt_tokens", "completion_tokens", "cache_read_tokens",
    "cache_write_tokens", "cache_hits",
)
# view name → its dimensions
VIEWS: dict[str, tuple[str, ...]] = {
    "all": (),
    "key": ("api_key",),
    "user": ("user_id",),
    "team": ("team_id",),
    "org": ("org_id",),
    "model": ("model_group",),
    "tag": ("tag",),
    "cube": ENTITY_DIMENSIONS,
}
HOURLY_VIEWS = ("all", "key", "user", "team", "org", "model", "tag")
DAILY_VIEWS = tuple(VIEWS)


def _rollup_table(meta: MetaData, name: str, money: TypeEngine[Any]) -> Table:
    table = Table(
        name, meta,
        Column("view", String(8), primary_key=True),
        Column("api_key", String(64), primary_key=True),
        Column("user_id", String(256), primary_key=True),
        Column("team_id", String(128), primary_key=True),
        Column("org_id", String(128), primary_key=True),
        Column("model_group", String(256), primary_key=True),
        Column("tag", String(256), primary_key=True),
        Column("bucket", DateTime(timezone=True), primary_key=True),
        *(Column(m, BigInteger, nullable=False) for m in MEASURES),
        Column("spend", money, nullable=False),
    )
    Index(f"ix_{name}_view_bucket", table.c.view, table.c.bucket)
    return table


def add_rollup_tables(meta: MetaData, money: TypeEngine[Any]) -> None:
    """``money``: the store's exact money type, wide enough for a proxy's lifetime of spend."""
    _rollup_table(meta, HOURLY, money)
    daily = _rollup_table(meta, DAILY, money)
    for column in ("user_id", "team_id", "org_id", "model_group"):
        # The cube filtered by one dimension (a user's keys and models per day).
        Index(f"ix_{DAILY}_view_{column}_bucket", daily.c.view, daily.c[column], daily.c.bucket)
