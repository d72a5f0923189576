"""Budget status of one key, user, team or organisation: for each of its budgets, what was spent
in the current window, what remains, and when the window resets.

The entity is read through the admin services (so their authorisation applies: a user sees their
own, viewers and admins everyone). Window spend is summed from the spend log for the window the
enforcement uses (``config.durations.window_at``); a lifetime budget uses the entity's running
total. The usage plan attached to the entity, if any, comes along (plans appear with their
entities). Money is ``Decimal`` until it is rendered.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tollgate.admin import AdminServices
from tollgate.auth.principal import Principal
from tollgate.config.durations import parse_duration, window_at
from tollgate.errors import InvalidRequest, NotFound, PermissionDenied


async def _entity(
    services: AdminServices, actor: Principal, *, key: str | None, user_id: str | None,
    team_id: str | None, organization_id: str | None,
) -> tuple[str, str, dict[str, Any], dict[str, str]]:
    """(entity type, id, its admin view, the spend-log filter that selects its rows)."""
    if key:
        view = (await services.keys.info(actor, key))["info"]
        return "key", view["token"], view, {"api_key": view["token"]}
    if team_id:
        view = (await services.teams.team_info(actor, team_id))["team_info"]
        return "team", team_id, view, {"team_id": team_id}
    if organization_id:
        view = await services.orgs.org_info(actor, organization_id)
        return "organization", organization_id, view, {"org_id": organization_id}
    if user_id or actor.user_id:
        view = (await services.users.user_info(actor, [user_id] if user_id else []))["user_info"]
        return "user", view["user_id"], view, {"user_id": view["user_id"]}
    raise InvalidRequest("pass key, user_id, team_id or organization_id", param="key")


async def budget_status(
    services: AdminServices, actor: Principal, *, key: str | None, user_id: str | None,
    team_id: str | None, organization_id: str | None, now: datetime,
) -> dict[str, Any]:
    kind, entity_id, view, filters = await _entity(
        services, actor, key=key, user_id=user_id, team_id=team_id, organization_id=organization_id
    )
    lifetime = Decimal(str(view.get("spend") or 0))
    windows = [(b["max_budget"], b.get("duration")) for b in view.get("budgets") or ()]
    if view.get("max_budget") is not None:
        windows.append((view["max_budget"], view.get("budget_duration")))
    budgets = []
    for amount, duration in windows:
        limit = Decimal(str(amount))
        window = window_at(parse_duration(duration, "budget_duration") if duration else None, now.timestamp())
        if window.lifetime:
            spent = lifetime
        else:
            start = datetime.fromtimestamp(window.start, UTC)
            groups = await services.store.spend_groups(None, filters=filters, start=start)
            spent = sum((g.spend for g in groups), start=Decimal(0))
        bounds = (None, None) if window.lifetime else (
            datetime.fromtimestamp(window.start, UTC).isoformat(),
            datetime.fromtimestamp(window.end, UTC).isoformat(),
        )
        budgets.append({
            "max_budget": float(limit), "duration": duration, "spent": float(spent),
            "remaining": float(max(limit - spent, Decimal(0))), "window_start": bounds[0],
            "reset_at": bounds[1],
        })
    plan = None
    if kind != "organization":
        try:
            plan = await services.plans.info(actor, entity_id, None)
        except (NotFound, PermissionDenied):
            plan = None  # no plan, or one the caller may not read
    alias = view.get("key_alias") or view.get("team_alias") or view.get("organization_alias") or view.get(
        "user_email")
    return {"entity_type": kind, "entity_id": entity_id, "alias": alias, "lifetime_spend": float(lifetime),
            "soft_budget": view.get("soft_budget"), "budgets": budgets, "usage_plan": plan}


__all__ = ["budget_status"]
