"""Organisations (LiteLLM ``/organization/*``): written by proxy admins, read by admins and viewers."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from tollgate.admin.access import Clock, KeyCache, Standing, as_stored, require_admin, require_read_all
from tollgate.admin.journal import Journal
from tollgate.admin.key_rules import refuse_spend
from tollgate.admin.policies import apply_fields
from tollgate.admin.requests import NewOrgRequest, UpdateOrgRequest
from tollgate.admin.views import org_view
from tollgate.auth.principal import Principal
from tollgate.errors import Conflict, NotFound
from tollgate.store import Store, StoreTx
from tollgate.store.records import EMPTY_POLICY, ZERO, Organization


class OrgService:
    def __init__(self, journal: Journal, store: Store, cache: KeyCache, clock: Clock,
                 standing: Standing = as_stored) -> None:
        self._standing = standing
        self._journal = journal
        self._store = store
        self._cache = cache
        self._clock = clock

    async def new_org(self, actor: Principal, body: NewOrgRequest) -> dict[str, Any]:
        require_admin(actor, "creating an organization")
        refuse_spend(body, ZERO)
        now = self._clock()
        org = Organization(body.organization_id or str(uuid.uuid4()), body.organization_alias,
                           apply_fields(EMPTY_POLICY, body, now), now, now)
        async with self._journal.write(actor, "/organization/new") as w:
            await w.tx.orgs.insert(org)
            view = org_view(org, [])
            w.after(view, org.id)
        return view

    async def org_info(self, actor: Principal, organization_id: str) -> dict[str, Any]:
        require_read_all(actor, "reading an organization")
        async with self._store.transaction() as tx:
            org = await _org(tx, organization_id)
            view = org_view(org, await tx.teams.find({"org_id": org.id}))
        return await self._standing(view, "org", org.id, org.policy)

    async def list_orgs(self, actor: Principal) -> list[dict[str, Any]]:
        require_read_all(actor, "listing organizations")
        async with self._store.transaction() as tx:
            return [org_view(o, await tx.teams.find({"org_id": o.id})) for o in await tx.orgs.find()]

    async def update_org(self, actor: Principal, body: UpdateOrgRequest) -> dict[str, Any]:
        require_admin(actor, "updating an organization")
        now = self._clock()
        async with self._journal.write(actor, "/organization/update") as w:
            org = await _org(w.tx, body.organization_id)
            refuse_spend(body, org.policy.spend)
            teams = await w.tx.teams.find({"org_id": org.id})
            w.before(org.id, org_view(org, teams))
            changes: dict[str, Any] = {"policy": apply_fields(org.policy, body, now), "updated_at": now}
            if "organization_alias" in body.model_fields_set:
                changes["alias"] = body.organization_alias
            org = replace(org, **changes)
            await w.tx.orgs.replace(org)
            view = org_view(org, teams)
            w.after(view)
        self._cache.invalidate_all()
        return view

    async def delete_orgs(self, actor: Principal, organization_ids: list[str]) -> dict[str, Any]:
        require_admin(actor, "deleting organizations")
        async with self._journal.write(actor, "/organization/delete") as w:
            before = []
            for org_id in organization_ids:
                org = await _org(w.tx, org_id)
                teams = await w.tx.teams.count({"org_id": org_id})
                if teams:
                    raise Conflict(f"organization '{org_id}' still has {teams} team(s); delete them first")
                before.append(org_view(org, []))
            w.before(",".join(organization_ids)[:256], before)
            await w.tx.orgs.delete(organization_ids)
            view = {"deleted_organizations": organization_ids}
            w.after(view)
        self._cache.invalidate_all()
        return view


async def _org(tx: StoreTx, org_id: str) -> Organization:
    org = await tx.orgs.get(org_id)
    if org is None:
        raise NotFound(f"organization '{org_id}' not found", param="organization_id")
    return org
