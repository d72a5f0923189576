"""Entity policies in the admin API: request fields → ``EntityPolicy``, ``EntityPolicy`` → LiteLLM
JSON fields, and the ceiling check that stops a non-admin from granting more than they hold.

LiteLLM's single ``max_budget``/``budget_duration`` and tollgate's ``budgets`` list are both kept;
each gets its ``reset_at`` when set. Money leaves as JSON numbers, as LiteLLM sends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from tollgate.admin.requests import PolicyFields
from tollgate.config.durations import next_reset
from tollgate.errors import PermissionDenied
from tollgate.store.records import LIMIT_NAMES, BudgetWindow, EntityPolicy

_SCALAR_LIMITS = {
    "rpm_limit": "rpm", "tpm_limit": "tpm", "input_tpm_limit": "input_tpm",
    "output_tpm_limit": "output_tpm", "max_parallel_requests": "max_parallel",
}


def apply_fields(policy: EntityPolicy, body: PolicyFields, now: datetime) -> EntityPolicy:
    """``policy`` with every field the caller sent in ``body`` applied."""
    sent = body.model_fields_set
    changes: dict[str, Any] = {}
    if "models" in sent:
        changes["models"] = tuple(body.models or ())
    for field, name in _SCALAR_LIMITS.items():
        if field in sent:
            changes[name] = getattr(body, field)
    for field in ("soft_budget", "metadata", "tags", "blocked", "spend"):
        if field in sent:
            changes[field] = _field_value(field, getattr(body, field))
    if sent & {"max_budget", "budget_duration"}:
        max_budget = body.max_budget if "max_budget" in sent else policy.max_budget
        duration = body.budget_duration if "budget_duration" in sent else policy.budget_duration
        changes["max_budget"] = max_budget
        changes["budget_duration"] = duration
        windowed = duration is not None and max_budget is not None
        changes["budget_reset_at"] = next_reset(duration, now) if windowed and duration else None
    if "budgets" in sent:
        changes["budgets"] = tuple(
            BudgetWindow(b.max_budget, b.duration, next_reset(b.duration, now, "budgets.duration")
                         if b.duration else None)
            for b in body.budgets or ()
        )
    if sent & {"model_limits", "model_rpm_limit", "model_tpm_limit"}:
        changes["model_limits"] = _model_limits(policy, body)
    return replace(policy, **changes)


def _field_value(field: str, value: Any) -> Any:
    if field == "tags":
        return tuple(value or ())
    if field == "metadata":
        return dict(value or {})
    if field == "blocked":
        return bool(value)
    if field == "spend":
        return value if value is not None else Decimal(0)
    return value


def _model_limits(policy: EntityPolicy, body: PolicyFields) -> dict[str, dict[str, int]]:
    sent = body.model_fields_set
    out: dict[str, dict[str, int]] = (
        {} if "model_limits" in sent else {m: dict(v) for m, v in policy.model_limits.items()}
    )
    for model, limits in (body.model_limits or {}).items():
        out[model] = {k: v for k, v in limits.model_dump().items() if v is not None}
    for field, name in (("model_rpm_limit", "rpm"), ("model_tpm_limit", "tpm")):
        for model, value in (getattr(body, field) or {}).items():
            out.setdefault(model, {})[name] = value
    return out


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def policy_view(p: EntityPolicy) -> dict[str, Any]:
    """The LiteLLM fields (plus tollgate's) that describe a policy."""
    return {
        "models": list(p.models),
        "max_budget": money(p.max_budget),
        "budget_duration": p.budget_duration,
        "budget_reset_at": iso(p.budget_reset_at),
        "soft_budget": money(p.soft_budget),
        "spend": float(p.spend),
        "tpm_limit": p.tpm,
        "rpm_limit": p.rpm,
        "input_tpm_limit": p.input_tpm,
        "output_tpm_limit": p.output_tpm,
        "max_parallel_requests": p.max_parallel,
        "model_rpm_limit": {m: v["rpm"] for m, v in p.model_limits.items() if "rpm" in v},
        "model_tpm_limit": {m: v["tpm"] for m, v in p.model_limits.items() if "tpm" in v},
        "model_limits": {m: dict(v) for m, v in p.model_limits.items()},
        "budgets": [
            {"max_budget": float(b.max_budget), "duration": b.duration, "reset_at": iso(b.reset_at)}
            for b in p.budgets
        ],
        "metadata": dict(p.metadata),
        "tags": list(p.tags),
        "blocked": p.blocked,
    }


def check_within(granted: EntityPolicy, ceiling: EntityPolicy, holder: str) -> None:
    """Refuse a grant that exceeds what ``holder`` (e.g. "your user") allows.

    Unset values are fine: the holder stays in the key's entity chain and still applies its own.
    """
    if ceiling.models and "*" not in ceiling.models:
        extra = [m for m in granted.models if m not in ceiling.models]
        if extra:
            raise PermissionDenied(f"{holder} may not use models {extra} (allowed: {list(ceiling.models)})")
    for name in LIMIT_NAMES:
        _check_limit(name, getattr(granted, name), getattr(ceiling, name), holder)
    for model, limits in ceiling.model_limits.items():
        mine: Mapping[str, int] = granted.model_limits.get(model, {})
        for name, cap in limits.items():
            _check_limit(f"{model}.{name}", mine.get(name), cap, holder)
    budget = ceiling.max_budget
    if budget is not None and granted.max_budget is not None and granted.max_budget > budget:
        raise PermissionDenied(f"{holder} has max_budget {budget}; the key's max_budget must not exceed it")


def _check_limit(name: str, value: int | None, cap: int | None, holder: str) -> None:
    if cap is not None and value is not None and value > cap:
        raise PermissionDenied(f"{holder} has {name} {cap}; the key's {name} must not exceed it")
