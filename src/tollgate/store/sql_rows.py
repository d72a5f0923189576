"""Rows ⇄ ``records``: how each record kind lives in its table (``Mapper``), the policy columns
every tenant entity repeats, the audit and spend rows. Datetimes read back UTC-aware (``utc``).
Imports only ``store.records`` and ``store.sql_tables``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Table, and_

from tollgate.store.records import (
    ZERO,
    AuditEntry,
    BudgetWindow,
    EntityPolicy,
    Membership,
    Organization,
    SpendRow,
    StoredDeployment,
    Team,
    UsagePlan,
    User,
    VirtualKey,
)
from tollgate.store.sql_tables import PREFIX, T

R = TypeVar("R")


def utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything tollgate compares is UTC-aware."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def policy_row(p: EntityPolicy) -> dict[str, Any]:
    return {
        "models": list(p.models), "rpm": p.rpm, "tpm": p.tpm, "input_tpm": p.input_tpm,
        "output_tpm": p.output_tpm, "max_parallel": p.max_parallel,
        "model_limits": {m: dict(v) for m, v in p.model_limits.items()},
        "budgets": [_budget_json(b) for b in p.budgets],
        "max_budget": p.max_budget, "budget_duration": p.budget_duration,
        "budget_reset_at": p.budget_reset_at, "soft_budget": p.soft_budget, "spend": p.spend,
        "metadata": dict(p.metadata), "tags": list(p.tags), "blocked": p.blocked,
    }


def policy_of(row: Mapping[Any, Any]) -> EntityPolicy:
    return EntityPolicy(
        models=tuple(row["models"] or ()), rpm=row["rpm"], tpm=row["tpm"], input_tpm=row["input_tpm"],
        output_tpm=row["output_tpm"], max_parallel=row["max_parallel"],
        model_limits=row["model_limits"] or {},
        budgets=tuple(_budget_of(b) for b in row["budgets"] or ()),
        max_budget=row["max_budget"], budget_duration=row["budget_duration"],
        budget_reset_at=utc(row["budget_reset_at"]), soft_budget=row["soft_budget"],
        spend=row["spend"] if row["spend"] is not None else ZERO,
        metadata=row["metadata"] or {}, tags=tuple(row["tags"] or ()), blocked=bool(row["blocked"]),
    )


def _budget_json(b: BudgetWindow) -> dict[str, Any]:
    # Decimal as text inside JSON: a float would not read back exactly.
    reset = b.reset_at.isoformat() if b.reset_at else None
    return {"max_budget": format(b.max_budget, "f"), "duration": b.duration, "reset_at": reset}


def _budget_of(raw: Mapping[str, Any]) -> BudgetWindow:
    reset = raw.get("reset_at")
    return BudgetWindow(
        Decimal(str(raw["max_budget"])), raw.get("duration"),
        utc(datetime.fromisoformat(reset)) if reset else None,
    )


@dataclass(frozen=True, slots=True)
class Mapper(Generic[R]):
    """How one record kind lives in its table."""

    kind: str
    table: Table
    id_columns: tuple[str, ...]
    id_of: Callable[[R], str]
    to_row: Callable[[R], dict[str, Any]]
    from_row: Callable[[Mapping[Any, Any]], R]
    filters: tuple[str, ...]

    def where_id(self, record_id: str) -> ColumnElement[bool]:
        parts = record_id.split("\x1f") if len(self.id_columns) > 1 else [record_id]
        if len(parts) != len(self.id_columns):
            parts = [*parts, *[""] * len(self.id_columns)][: len(self.id_columns)]
        return and_(*(self.table.c[c] == v for c, v in zip(self.id_columns, parts, strict=True)))


def _stamps(r: Any) -> dict[str, Any]:
    return {"created_at": r.created_at, "updated_at": r.updated_at}


ORGS: Mapper[Organization] = Mapper(
    "organization", T[f"{PREFIX}organizations"], ("id",), lambda r: r.id,
    lambda r: {"id": r.id, "alias": r.alias, **policy_row(r.policy), **_stamps(r)},
    lambda w: Organization(w["id"], w["alias"], policy_of(w), utc(w["created_at"]), utc(w["updated_at"])),
    ("alias",),
)
TEAMS: Mapper[Team] = Mapper(
    "team", T[f"{PREFIX}teams"], ("id",), lambda r: r.id,
    lambda r: {"id": r.id, "alias": r.alias, "org_id": r.org_id, **policy_row(r.policy), **_stamps(r)},
    lambda w: Team(
        w["id"], w["alias"], w["org_id"], policy_of(w), utc(w["created_at"]), utc(w["updated_at"])
    ),
    ("org_id", "alias"),
)
USERS: Mapper[User] = Mapper(
    "user", T[f"{PREFIX}users"], ("id",), lambda r: r.id,
    lambda r: {
        "id": r.id, "email": r.email, "alias": r.alias, "role": r.role, "org_id": r.org_id,
        **policy_row(r.policy), **_stamps(r),
    },
    lambda w: User(
        w["id"], w["email"], w["alias"], w["role"], w["org_id"], policy_of(w),
        utc(w["created_at"]), utc(w["updated_at"]),
    ),
    ("email", "org_id", "role"),
)
MEMBERSHIPS: Mapper[Membership] = Mapper(
    "team membership", T[f"{PREFIX}team_memberships"], ("team_id", "user_id"), lambda r: r.id,
    lambda r: {"team_id": r.team_id, "user_id": r.user_id, "role": r.role},
    lambda w: Membership(w["team_id"], w["user_id"], w["role"]),
    ("team_id", "user_id"),
)
KEYS: Mapper[VirtualKey] = Mapper(
    "key", T[f"{PREFIX}verification_tokens"], ("token",), lambda r: r.token,
    lambda r: {
        "token": r.token, "key_name": r.key_name, "key_alias": r.key_alias, "user_id": r.user_id,
        "team_id": r.team_id, "org_id": r.org_id, "expires": r.expires, "created_by": r.created_by,
        **policy_row(r.policy), **_stamps(r),
    },
    lambda w: VirtualKey(
        w["token"], w["key_name"], w["key_alias"], w["user_id"], w["team_id"], w["org_id"],
        utc(w["expires"]), policy_of(w), w["created_by"], utc(w["created_at"]), utc(w["updated_at"]),
    ),
    ("user_id", "team_id", "org_id", "key_alias"),
)
DEPLOYMENTS: Mapper[StoredDeployment] = Mapper(
    "model", T[f"{PREFIX}deployments"], ("id",), lambda r: r.id,
    lambda r: {
        "id": r.id, "model_name": r.model_name, "litellm_params": dict(r.litellm_params),
        "model_info": dict(r.model_info), **_stamps(r),
    },
    lambda w: StoredDeployment(
        w["id"], w["model_name"], w["litellm_params"], w["model_info"] or {},
        utc(w["created_at"]), utc(w["updated_at"]),
    ),
    ("model_name",),
)
PLANS: Mapper[UsagePlan] = Mapper(
    "usage plan", T[f"{PREFIX}usage_plans"], ("entity_type", "entity_id"), lambda r: r.id,
    lambda r: {
        "entity_type": r.entity_type, "entity_id": r.entity_id, "document": dict(r.document), **_stamps(r),
    },
    lambda w: UsagePlan(
        w["entity_type"], w["entity_id"], w["document"], utc(w["created_at"]), utc(w["updated_at"])
    ),
    ("entity_type", "entity_id"),
)
AUDIT = T[f"{PREFIX}audit_logs"]


def audit_row(e: AuditEntry) -> dict[str, Any]:
    return {name: getattr(e, name) for name in AuditEntry.__dataclass_fields__}


def audit_of(w: Mapping[Any, Any]) -> AuditEntry:
    values = {name: w[name] for name in AuditEntry.__dataclass_fields__}
    values["created_at"] = utc(w["created_at"])
    return AuditEntry(**values)


AUDITS: Mapper[AuditEntry] = Mapper(
    "audit entry", AUDIT, ("id",), lambda r: r.id, audit_row, audit_of,
    ("action", "target_id", "actor_user_id", "actor_key"),
)
SPEND = T[f"{PREFIX}spend_logs"]


def spend_row(r: SpendRow) -> dict[str, Any]:
    return {
        **{name: getattr(r, name) for name in SpendRow.__dataclass_fields__},
        "tags": list(r.tags), "metadata": dict(r.metadata),
    }


def spend_of(w: Mapping[Any, Any]) -> SpendRow:
    values = {name: w[name] for name in SpendRow.__dataclass_fields__}
    values["started_at"] = utc(w["started_at"])
    values["ended_at"] = utc(w["ended_at"])
    values["completion_start_at"] = utc(w["completion_start_at"])
    values["tags"] = tuple(w["tags"] or ())
    values["metadata"] = w["metadata"] or {}
    values["stream"] = bool(w["stream"])
    values["cache_hit"] = bool(w["cache_hit"])
    return SpendRow(**values)
