"""Usage plans in the DIY-gateway style, mapped onto tollgate's entities.

``entity_type`` picks the entity: USER → user, SERVICE/API_KEY → key (by hash, plaintext or
alias), DEPARTMENT/PROJECT → team; ``tenant_id`` is the organisation. ``model_permissions``
become the entity's models, ``default_limits``/``model_limits`` its limits, ``active: false``
blocks it. The posted document is kept as is, so ``/usage-plan/info`` returns what was posted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from tollgate.admin.access import Clock, KeyCache, require_admin, require_read_all
from tollgate.admin.journal import Journal
from tollgate.admin.keys import token_of
from tollgate.admin.requests import PlanLimits, UsagePlanRequest
from tollgate.auth.principal import Principal
from tollgate.config.durations import next_reset
from tollgate.errors import InvalidRequest, NotFound
from tollgate.store import Store, StoreTx
from tollgate.store.records import BudgetWindow, EntityPolicy, Organization, Team, UsagePlan, User

ENTITY_KINDS = {"USER": "user", "SERVICE": "key", "API_KEY": "key", "DEPARTMENT": "team", "PROJECT": "team"}
SYSTEM_TENANT = "SYSTEM"  # the DIY convention for "no tenant"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _limits(raw: PlanLimits | None) -> dict[str, int]:
    return {} if raw is None else {k: v for k, v in raw.model_dump().items() if v is not None}


def plan_policy(base: EntityPolicy, plan: UsagePlanRequest, clock: Clock) -> EntityPolicy:
    defaults = _limits(plan.default_limits)
    models = tuple(plan.model_permissions or ())
    now = clock()
    return replace(
        base,
        models=() if models == ("*",) else models,
        rpm=defaults.get("rpm"), tpm=defaults.get("tpm"), input_tpm=defaults.get("input_tpm"),
        output_tpm=defaults.get("output_tpm"), max_parallel=defaults.get("max_parallel"),
        model_limits={m: _limits(v) for m, v in (plan.model_limits or {}).items()},
        budgets=tuple(
            BudgetWindow(b.max_budget, b.duration, next_reset(b.duration, now) if b.duration else None)
            for b in plan.budgets or ()
        ) if plan.budgets is not None else base.budgets,
        metadata={**base.metadata, **(plan.metadata or {})},
        blocked=not plan.active,
    )


class UsagePlanService:
    def __init__(self, journal: Journal, store: Store, cache: KeyCache, clock: Clock) -> None:
        self._journal = journal
        self._store = store
        self._cache = cache
        self._clock = clock

    async def put(self, actor: Principal, plan: UsagePlanRequest, *, create: bool) -> dict[str, Any]:
        require_admin(actor, "writing a usage plan")
        now = self._clock()
        document: Mapping[str, Any] = _jsonable(plan.model_dump(exclude_unset=True))
        async with self._journal.write(actor, "/usage-plan/new" if create else "/usage-plan/update") as w:
            tx = w.tx
            existing = await tx.usage_plans.get(f"{plan.entity_type}\x1f{plan.entity_id}")
            if not create and existing is None:
                raise NotFound(f"usage plan for {plan.entity_type} '{plan.entity_id}' not found")
            w.before(plan.entity_id, None if existing is None else dict(existing.document))
            await self._apply(tx, plan)
            if existing is None:
                await tx.usage_plans.insert(UsagePlan(plan.entity_type, plan.entity_id, document, now, now))
            else:
                await tx.usage_plans.replace(replace(existing, document=document, updated_at=now))
            w.after(dict(document))
        self._cache.invalidate_all()
        return dict(document)

    async def info(self, actor: Principal, entity_id: str, entity_type: str | None) -> dict[str, Any]:
        require_read_all(actor, "reading a usage plan")
        return dict((await self._find(entity_id, entity_type)).document)

    async def list_plans(self, actor: Principal) -> list[dict[str, Any]]:
        require_read_all(actor, "listing usage plans")
        async with self._store.transaction() as tx:
            return [dict(p.document) for p in await tx.usage_plans.find()]

    async def delete(self, actor: Principal, entity_id: str, entity_type: str | None) -> dict[str, Any]:
        """Remove the plan; the entity keeps its other settings but loses the plan's limits."""
        require_admin(actor, "deleting a usage plan")
        plan = await self._find(entity_id, entity_type)
        cleared = UsagePlanRequest(entity_id=plan.entity_id, entity_type=plan.entity_type)  # type: ignore[arg-type]
        view = {"deleted": {"entity_type": plan.entity_type, "entity_id": plan.entity_id}}
        async with self._journal.write(actor, "/usage-plan/delete") as w:
            w.before(plan.entity_id, dict(plan.document))
            await self._apply(w.tx, cleared, tenant=False)
            await w.tx.usage_plans.delete([plan.id])
            w.after(view)
        self._cache.invalidate_all()
        return view

    async def _find(self, entity_id: str, entity_type: str | None) -> UsagePlan:
        async with self._store.transaction() as tx:
            if entity_type is not None:
                plan = await tx.usage_plans.get(f"{entity_type}\x1f{entity_id}")
                found = [plan] if plan else []
            else:
                found = await tx.usage_plans.find({"entity_id": entity_id})
        if not found:
            raise NotFound(f"usage plan for '{entity_id}' not found", param="entity_id")
        if len(found) > 1:
            raise InvalidRequest("entity_type: several plans match; pass entity_type", param="entity_type")
        return found[0]

    async def _apply(self, tx: StoreTx, plan: UsagePlanRequest, tenant: bool = True) -> None:
        now = self._clock()
        org_id = plan.tenant_id if tenant and plan.tenant_id not in (None, SYSTEM_TENANT) else None
        if org_id is not None and await tx.orgs.get(org_id) is None:
            await tx.orgs.insert(Organization(org_id, created_at=now, updated_at=now))
        kind = ENTITY_KINDS[plan.entity_type]
        if kind == "user":
            user = await tx.users.get(plan.entity_id)
            if user is None:
                await tx.users.insert(User(plan.entity_id, org_id=org_id, created_at=now, updated_at=now,
                                           policy=plan_policy(EntityPolicy(), plan, self._clock)))
            else:
                await tx.users.replace(replace(user, org_id=org_id or user.org_id, updated_at=now,
                                               policy=plan_policy(user.policy, plan, self._clock)))
        elif kind == "team":
            team = await tx.teams.get(plan.entity_id)
            if team is None:
                await tx.teams.insert(Team(plan.entity_id, org_id=org_id, created_at=now, updated_at=now,
                                           policy=plan_policy(EntityPolicy(), plan, self._clock)))
            else:
                await tx.teams.replace(replace(team, org_id=org_id or team.org_id, updated_at=now,
                                               policy=plan_policy(team.policy, plan, self._clock)))
        else:
            key = await tx.keys.get(token_of(plan.entity_id))
            if key is None:
                by_alias = await tx.keys.find({"key_alias": plan.entity_id}, limit=1)
                key = by_alias[0] if by_alias else None
            if key is None:
                message = f"key '{plan.entity_id}' not found (give its hash or alias)"
                raise NotFound(message, param="entity_id")
            await tx.keys.replace(replace(key, org_id=org_id or key.org_id, updated_at=now,
                                          policy=plan_policy(key.policy, plan, self._clock)))
