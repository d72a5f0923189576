"""Bulk onboarding: one team per tier (allowed models, a daily budget and a monthly cap) and one
user per CSV row (email, tier, alias, optional budget and rpm overrides), each with a first key
bound to its tier's team.

Idempotent: a tier whose team exists is reused, a user whose email exists is skipped and
reported. Each user and its key are written in one transaction.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from tollgate.admin import AdminServices
from tollgate.admin.requests import BudgetIn, NewTeamRequest, NewUserRequest
from tollgate.auth.principal import Principal
from tollgate.errors import InvalidRequest

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class Tier:
    id: str
    name: str
    allowed_models: tuple[str, ...]
    budget_daily: Decimal | None = None
    budget_monthly: Decimal | None = None

    @property
    def team_id(self) -> str:
        return f"tier-{self.id}"


@dataclass(frozen=True, slots=True)
class Newcomer:
    email: str
    tier: str
    alias: str | None = None
    budget: Decimal | None = None  # the user's own daily budget
    rpm: int | None = None


@dataclass(slots=True)
class OnboardResult:
    teams_created: list[str] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)  # user_id, user_email, team_id, key
    skipped: list[str] = field(default_factory=list)


def _decimal(value: object, where: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise InvalidRequest(f"{where}: '{value}' is not a number") from None


def parse_tiers(raw: object, where: str = "tiers") -> list[Tier]:
    tiers = raw.get("tiers") if isinstance(raw, Mapping) else None
    if not isinstance(tiers, Mapping) or not tiers:
        raise InvalidRequest(f"{where}: expected a top-level 'tiers' mapping")
    out: list[Tier] = []
    for tier_id, spec in tiers.items():
        if not isinstance(spec, Mapping):
            raise InvalidRequest(f"{where}.{tier_id}: must be a mapping")
        models = spec.get("allowed_models") or []
        if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
            raise InvalidRequest(f"{where}.{tier_id}.allowed_models: must be a list of model names")
        out.append(Tier(
            str(tier_id), str(spec.get("name") or tier_id), tuple(models),
            _decimal(spec.get("budget_daily"), f"{where}.{tier_id}.budget_daily"),
            _decimal(spec.get("budget_monthly"), f"{where}.{tier_id}.budget_monthly"),
        ))
    return out


def load_tiers(path: str | Path) -> list[Tier]:
    return parse_tiers(yaml.safe_load(Path(path).read_text(encoding="utf-8")), str(path))


def parse_users(lines: list[str], where: str = "users") -> list[Newcomer]:
    out: list[Newcomer] = []
    for number, row in enumerate(csv.DictReader(lines), start=2):
        email, tier = (row.get("email") or "").strip(), (row.get("tier") or "").strip()
        if not email or not tier:
            raise InvalidRequest(f"{where}:{number}: email and tier are required")
        rpm = (row.get("rpm") or "").strip()
        if rpm and not rpm.isdigit():
            raise InvalidRequest(f"{where}:{number}: rpm '{rpm}' is not a whole number")
        out.append(Newcomer(
            email, tier, (row.get("alias") or "").strip() or None,
            _decimal((row.get("budget") or "").strip(), f"{where}:{number}: budget"),
            int(rpm) if rpm else None,
        ))
    return out


def load_users(path: str | Path) -> list[Newcomer]:
    return parse_users(Path(path).read_text(encoding="utf-8").splitlines(), str(path))


async def onboard(
    services: AdminServices,
    actor: Principal,
    tiers: list[Tier],
    users: list[Newcomer],
    progress: Progress | None = None,
) -> OnboardResult:
    by_id = {t.id: t for t in tiers}
    unknown = sorted({u.tier for u in users} - by_id.keys())
    if unknown:
        raise InvalidRequest(f"users: unknown tier(s) {unknown}; the tiers file defines {sorted(by_id)}")
    result = OnboardResult()
    for tier in tiers:
        async with services.store.transaction() as tx:
            exists = await tx.teams.get(tier.team_id) is not None
        if not exists:
            await services.teams.new_team(actor, _team_request(tier))
            result.teams_created.append(tier.team_id)
    for done, user in enumerate(users, start=1):
        async with services.store.transaction() as tx:
            exists = bool(await tx.users.count({"email": user.email}))
        if exists:
            result.skipped.append(user.email)
        else:
            team_id = by_id[user.tier].team_id
            created = await services.users.new_user(actor, _user_request(user, team_id))
            result.created.append({"user_id": created["user_id"], "user_email": user.email,
                                   "team_id": team_id, "key": created["key"]})
        if progress is not None:
            progress(done, len(users), user.email)
    return result


def _team_request(tier: Tier) -> NewTeamRequest:
    budgets = [BudgetIn(max_budget=amount, duration=duration)
               for amount, duration in ((tier.budget_daily, "1d"), (tier.budget_monthly, "1mo"))
               if amount is not None]
    return NewTeamRequest(team_id=tier.team_id, team_alias=tier.name, models=list(tier.allowed_models),
                          budgets=budgets, metadata={"tier": tier.id})


def _user_request(user: Newcomer, team_id: str) -> NewUserRequest:
    fields: dict[str, Any] = {"user_email": user.email, "user_alias": user.alias, "team_id": team_id,
                              "key_alias": user.email}
    if user.budget is not None:
        fields["budgets"] = [BudgetIn(max_budget=user.budget, duration="1d")]
    if user.rpm is not None:
        fields["rpm_limit"] = user.rpm
    return NewUserRequest(**fields)
