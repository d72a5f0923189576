"""The rules a key write must satisfy beyond "who may call the route" (``matrix.FIELDS["key"]``).

Internal users write only their own keys: they name only themselves as the user, only teams they
belong to (and never move a key between teams), only their own or their team's organisation; the
key's models, limits and budgets stay within their user's and team's; and on an existing key they
may only tighten what is there (limits, budgets, models, expiry, blocking), so nothing an admin set
can be undone. Nobody writes ``spend``. ``litellm_settings.upperbound_key_generate_params`` caps
every caller's ``/key/generate`` and ``/key/regenerate`` (LiteLLM's semantics: an unset field takes
the bound, a larger value is a 400).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tollgate.admin.matrix import FIELDS
from tollgate.admin.requests import KeyFields, PolicyFields, RegenerateKeyRequest
from tollgate.config.durations import expiry
from tollgate.errors import ConfigError, InvalidRequest, PermissionDenied
from tollgate.store.records import LIMIT_NAMES, EntityPolicy, VirtualKey

LOOSEN = "you may only tighten what is set on this key; ask a proxy admin to loosen it"


def refuse_spend(body: PolicyFields, current: Decimal) -> None:
    """``spend`` is the sum of the spend log: a body may repeat its value, never change it."""
    if "spend" in body.model_fields_set and body.spend is not None and body.spend != current:
        raise InvalidRequest(
            f"spend: the recorded spend ({current}) comes from the spend log and cannot be written",
            param="spend",
        )


def refuse_admin_fields(body: PolicyFields) -> None:
    rules = FIELDS["key"]
    for name in sorted(body.model_fields_set):
        if rules.get(name) == "admin":
            raise PermissionDenied(f"{name}: only a proxy admin may set it", param=name)


def check_owner_update(body: KeyFields | RegenerateKeyRequest, current: VirtualKey, owner: str,
                       now: datetime) -> None:
    """An owner's change to their existing key: identity fields fixed, expiry and blocking only tighter."""
    refuse_admin_fields(body)
    sent = body.model_fields_set
    if "user_id" in sent and getattr(body, "user_id", None) != owner:
        raise PermissionDenied("user_id: you may not move a key to another user", param="user_id")
    if "team_id" in sent and getattr(body, "team_id", None) != current.team_id:
        raise PermissionDenied(
            f"team_id: you may not move a key out of or between teams (it belongs to "
            f"{current.team_id or 'no team'})", param="team_id")
    if "organization_id" in sent and getattr(body, "organization_id", None) != current.org_id:
        raise PermissionDenied("organization_id: you may not move a key between organizations",
                               param="organization_id")
    if "blocked" in sent and current.policy.blocked and not body.blocked:
        raise PermissionDenied(f"blocked: this key is blocked; {LOOSEN}", param="blocked")
    if sent & {"duration", "expires"} and current.expires is not None:
        new = _expiry_of(body, now)
        if new is None or new > current.expires:
            raise PermissionDenied(
                f"expires: the key expires at {current.expires.isoformat()}; {LOOSEN}", param="expires")


def _expiry_of(body: KeyFields | RegenerateKeyRequest, now: datetime) -> datetime | None:
    if body.duration:
        return expiry(body.duration, now)
    return getattr(body, "expires", None)


def check_tightens(new: EntityPolicy, old: EntityPolicy) -> None:
    """Every model, limit and budget set on ``old`` is still set on ``new``, no looser."""
    if old.models and "*" not in old.models:
        extra = [m for m in new.models if m not in old.models]
        if not new.models or extra:
            raise PermissionDenied(f"models: the key may use only {list(old.models)}; {LOOSEN}",
                                   param="models")
    for name in LIMIT_NAMES:
        _not_looser(name, getattr(new, name), getattr(old, name))
    for model, limits in old.model_limits.items():
        for name, cap in limits.items():
            _not_looser(f"model_limits.{model}.{name}", new.model_limits.get(model, {}).get(name), cap)
    if old.max_budget is not None:
        _not_looser("max_budget", new.max_budget, old.max_budget)
        if new.budget_duration != old.budget_duration:
            raise PermissionDenied(f"budget_duration: {LOOSEN}", param="budget_duration")
    for window in old.budgets:
        same = [b.max_budget for b in new.budgets if b.duration == window.duration]
        if not same or min(same) > window.max_budget:
            raise PermissionDenied(
                f"budgets: the key has {window.max_budget} per {window.duration or 'lifetime'}; {LOOSEN}",
                param="budgets")


def _not_looser(name: str, new: Any, old: Any) -> None:
    if old is not None and (new is None or new > old):
        raise PermissionDenied(f"{name}: the key has {old}; {LOOSEN}", param=name.split(".", 1)[0])


@dataclass(frozen=True, slots=True)
class KeyBounds:
    """``litellm_settings.upperbound_key_generate_params``, parsed once at start-up."""

    values: Mapping[str, Any]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> KeyBounds:
        where = "litellm_settings.upperbound_key_generate_params"
        known = {"max_budget", "budget_duration", "duration", "max_parallel_requests", "tpm_limit",
                 "rpm_limit"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {unknown}; tollgate bounds {sorted(known)}")
        try:
            fields = PolicyFields.model_validate({k: v for k, v in raw.items() if k != "duration"})
            if raw.get("duration") is not None:
                expiry(str(raw["duration"]), datetime.now().astimezone(), f"{where}.duration")
            if fields.budget_duration is not None:
                expiry(fields.budget_duration, datetime.now().astimezone(), f"{where}.budget_duration")
        except (ValueError, InvalidRequest) as exc:
            raise ConfigError(f"{where}: {exc}") from None
        return cls({k: v for k, v in raw.items() if v is not None})

    def apply(self, body: Any, now: datetime) -> Any:
        """``body`` with unset bounded fields set to the bound; a larger value is refused."""
        fill = {name: bound for name, bound in self.values.items()
                if getattr(body, name, None) is None and name not in body.model_fields_set}
        self.refuse_over(body, now)
        return body.model_copy(update=fill) if fill else body

    def refuse_over(self, body: Any, now: datetime) -> None:
        """Refuse a bounded field sent above its bound (an update may not raise a key past them)."""
        for name, bound in self.values.items():
            value = getattr(body, name, None)
            if value is None:
                continue
            if name in ("duration", "budget_duration"):
                over = expiry(str(value), now, name) > expiry(str(bound), now, name)
            else:
                over = Decimal(str(value)) > Decimal(str(bound))
            if over:
                raise InvalidRequest(
                    f"{name} is over max limit set in config - user_value={value}; max_value={bound}",
                    param=name)


NO_BOUNDS = KeyBounds({})
