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
from tollgate.auth.principal import guardrail_settings
from tollgate.config.durations import next_reset
from tollgate.errors import InvalidRequest, PermissionDenied
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
    for field in ("soft_budget", "tags", "blocked", "spend"):
        if field in sent:
            changes[field] = _field_value(field, getattr(body, field))
    if "metadata" in sent:
        changes["metadata"] = _metadata(policy.metadata, body.metadata or {})
    if "guardrails" in sent:
        metadata = dict(changes.get("metadata", policy.metadata))
        metadata["guardrails"] = list(dict.fromkeys(body.guardrails or ()))
        changes["metadata"] = metadata
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


_GUARDRAIL_KEYS = ("guardrails", "modify_guardrails")


def _metadata(current: Mapping[str, Any], sent: Mapping[str, Any]) -> dict[str, Any]:
    """New metadata, with the guardrail settings stored one way: ``guardrails`` the list of names,
    ``modify_guardrails`` the team's switch-off permission (LiteLLM also writes it as
    ``guardrails: {"modify_guardrails": false}``). Settings the new metadata does not mention are
    kept: replacing metadata never drops a guardrail by the way."""
    out = dict(sent)
    nested = out.get("guardrails")
    if isinstance(nested, dict):
        del out["guardrails"]
        if "modify_guardrails" in nested:
            out["modify_guardrails"] = nested["modify_guardrails"]
    names = out.get("guardrails")
    valid = isinstance(names, list) and all(isinstance(n, str) and n for n in names)
    if names is not None and not valid:
        raise InvalidRequest("metadata.guardrails: must be a list of guardrail names", param="metadata")
    if not isinstance(out.get("modify_guardrails", False), bool):
        raise InvalidRequest("metadata.modify_guardrails: must be true or false", param="metadata")
    for key in _GUARDRAIL_KEYS:
        if key not in out and key in current:
            out[key] = current[key]
    return out


def check_guardrails(before: EntityPolicy, after: EntityPolicy, known: frozenset[str] | None) -> None:
    """Names newly attached must be configured guardrails (``known``; None: not checked)."""
    if known is None:
        return
    old = set(guardrail_settings(before.metadata)[0])
    unknown = [n for n in guardrail_settings(after.metadata)[0] if n not in known and n not in old]
    if unknown:
        available = ", ".join(sorted(known)) or "none are configured"
        raise InvalidRequest(
            f"guardrails: unknown guardrail {', '.join(repr(n) for n in unknown)} (available: {available})",
            param="guardrails",
        )


def check_guardrails_kept(before: EntityPolicy, after: EntityPolicy) -> None:
    """For writers who are not proxy admins: a key's guardrails may be added, not removed."""
    removed = set(guardrail_settings(before.metadata)[0]) - set(guardrail_settings(after.metadata)[0])
    if removed:
        raise PermissionDenied(
            f"only a proxy admin may remove guardrails from a key ({', '.join(sorted(removed))})"
        )


def _field_value(field: str, value: Any) -> Any:
    if field == "tags":
        return tuple(value or ())
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
        "guardrails": list(guardrail_settings(p.metadata)[0]) or None,
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
