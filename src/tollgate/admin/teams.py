"""Teams (LiteLLM ``/team/*``): written by proxy admins; members are also managed by the team's own
admins (membership role ``admin``), who may add and remove members with the role ``user``. Read by
admins, viewers and the team's members. Deleting a team deletes its keys.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from tollgate.admin.access import Clock, KeyCache, Standing, as_stored, can_read_all, require_admin, role_of
from tollgate.admin.journal import Journal
from tollgate.admin.key_rules import refuse_spend
from tollgate.admin.keys import key_view
from tollgate.admin.policies import apply_fields, check_guardrails
from tollgate.admin.requests import (
    Member,
    MemberAddRequest,
    MemberDeleteRequest,
    NewTeamRequest,
    UpdateTeamRequest,
)
from tollgate.admin.team_refs import require_team
from tollgate.admin.user_defaults import UserDefaults
from tollgate.admin.users import find_user
from tollgate.admin.views import members_of, team_view, user_view
from tollgate.auth.principal import Principal
from tollgate.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from tollgate.store import Store, StoreTx
from tollgate.store.records import EMPTY_POLICY, ZERO, Membership, Team, User


class TeamService:
    def __init__(self, journal: Journal, store: Store, cache: KeyCache, clock: Clock,
                 defaults: UserDefaults, standing: Standing = as_stored,
                 guardrails: frozenset[str] | None = None) -> None:
        self._standing = standing
        self._journal = journal
        self._store = store
        self._cache = cache
        self._clock = clock
        self._defaults = defaults
        self._guardrails = guardrails  # the configured guardrail names (None: not checked)

    async def new_team(self, actor: Principal, body: NewTeamRequest) -> dict[str, Any]:
        require_admin(actor, "creating a team")
        refuse_spend(body, ZERO)
        now = self._clock()
        async with self._journal.write(actor, "/team/new") as w:
            tx = w.tx
            if body.organization_id and await tx.orgs.get(body.organization_id) is None:
                raise NotFound(f"organization '{body.organization_id}' not found", param="organization_id")
            if body.team_alias and await tx.teams.count({"alias": body.team_alias}):
                raise Conflict(f"a team with alias '{body.team_alias}' already exists", param="team_alias")
            team = Team(body.team_id or str(uuid.uuid4()), body.team_alias, body.organization_id,
                        apply_fields(EMPTY_POLICY, body, now), now, now)
            check_guardrails(EMPTY_POLICY, team.policy, self._guardrails)
            await tx.teams.insert(team)
            for member in body.members_with_roles or ():
                user = await self._user_for_member(tx, member)
                await tx.memberships.insert(Membership(team.id, user.id, member.role))
            view = team_view(team, await members_of(tx, team.id))
            w.after(view, team.id)
        return view

    async def team_info(self, actor: Principal, team_id: str) -> dict[str, Any]:
        async with self._store.transaction() as tx:
            team = await _team(tx, team_id)
            members = await members_of(tx, team.id)
            if not can_read_all(actor) and actor.user_id not in {m.user_id for m in members}:
                raise PermissionDenied(f"you are not a member of team '{team_id}'")
            keys = await tx.keys.find({"team_id": team.id})
        shown = await self._standing(team_view(team, members), "team", team.id, team.policy)
        return {"team_id": team.id, "team_info": shown,
                "keys": [key_view(k) for k in keys],
                "team_memberships": [{"team_id": m.team_id, "user_id": m.user_id, "role": m.role}
                                     for m in members]}

    async def list_teams(self, actor: Principal, organization_id: str | None = None) -> list[dict[str, Any]]:
        async with self._store.transaction() as tx:
            if can_read_all(actor):
                teams = await tx.teams.find({"org_id": organization_id} if organization_id else None)
            else:
                mine = await tx.memberships.find({"user_id": actor.user_id}) if actor.user_id else []
                teams = [t for m in mine if (t := await tx.teams.get(m.team_id)) is not None]
            return [team_view(t, await members_of(tx, t.id)) for t in teams]

    async def update_team(self, actor: Principal, body: UpdateTeamRequest) -> dict[str, Any]:
        require_admin(actor, "updating a team")
        now = self._clock()
        async with self._journal.write(actor, "/team/update") as w:
            team = await _team(w.tx, body.team_id)
            refuse_spend(body, team.policy.spend)
            members = await members_of(w.tx, team.id)
            w.before(team.id, team_view(team, members))
            changes: dict[str, Any] = {"policy": apply_fields(team.policy, body, now), "updated_at": now}
            check_guardrails(team.policy, changes["policy"], self._guardrails)
            if "team_alias" in body.model_fields_set:
                changes["alias"] = body.team_alias
            if "organization_id" in body.model_fields_set:
                if body.organization_id and await w.tx.orgs.get(body.organization_id) is None:
                    raise NotFound(f"organization '{body.organization_id}' not found",
                                   param="organization_id")
                changes["org_id"] = body.organization_id
            team = replace(team, **changes)
            await w.tx.teams.replace(team)
            view = team_view(team, members)
            w.after(view)
        self._cache.invalidate_all()
        return view

    async def set_team_blocked(self, actor: Principal, team_id: str, blocked: bool) -> dict[str, Any]:
        require_admin(actor, "blocking a team")
        async with self._journal.write(actor, "/team/block" if blocked else "/team/unblock") as w:
            team = await _team(w.tx, team_id)
            members = await members_of(w.tx, team.id)
            w.before(team.id, team_view(team, members))
            team = replace(team, policy=replace(team.policy, blocked=blocked), updated_at=self._clock())
            await w.tx.teams.replace(team)
            view = team_view(team, members)
            w.after(view)
        self._cache.invalidate_all()
        return view

    async def delete_teams(self, actor: Principal, team_ids: list[str]) -> dict[str, Any]:
        require_admin(actor, "deleting teams")
        async with self._journal.write(actor, "/team/delete") as w:
            before = []
            ids = []
            for ref in team_ids:
                team = await _team(w.tx, ref, "team_ids")
                members = await members_of(w.tx, team.id)
                before.append(team_view(team, members))
                await w.tx.keys.delete([k.token for k in await w.tx.keys.find({"team_id": team.id})])
                await w.tx.memberships.delete([m.id for m in members])
                ids.append(team.id)
            w.before(",".join(ids)[:256], before)
            await w.tx.teams.delete(ids)
            view = {"deleted_teams": team_ids}
            w.after(view)
        self._cache.invalidate_all()
        return view

    async def add_members(self, actor: Principal, body: MemberAddRequest) -> dict[str, Any]:
        members = body.member if isinstance(body.member, list) else [body.member]
        async with self._journal.write(actor, "/team/member_add") as w:
            tx = w.tx
            team = await _team(tx, body.team_id)
            await _require_team_admin(tx, actor, team.id, "adding team members")
            if role_of(actor) != "proxy_admin" and any(m.role != "user" for m in members):
                raise PermissionDenied("member.role: team admins may add members with the role 'user' only",
                                       param="member")
            w.before(team.id, team_view(team, await members_of(tx, team.id)))
            updated: list[User] = []
            for member in members:
                user = await self._user_for_member(tx, member)
                if await tx.memberships.get(f"{team.id}\x1f{user.id}") is not None:
                    message = f"user '{user.id}' is already a member of team '{team.id}'"
                    raise Conflict(message, param="member")
                await tx.memberships.insert(Membership(team.id, user.id, member.role))
                updated.append(user)
            view = {**team_view(team, await members_of(tx, team.id)),
                    "updated_users": [user_view(u) for u in updated],
                    "updated_team_memberships": [{"team_id": team.id, "user_id": u.id} for u in updated]}
            w.after(view)
        self._cache.invalidate_all()
        return view

    async def delete_member(self, actor: Principal, body: MemberDeleteRequest) -> dict[str, Any]:
        async with self._journal.write(actor, "/team/member_delete") as w:
            tx = w.tx
            team = await _team(tx, body.team_id)
            await _require_team_admin(tx, actor, team.id, "removing team members")
            user = await find_user(tx, body.user_id, body.user_email)
            w.before(team.id, team_view(team, await members_of(tx, team.id)))
            membership = await tx.memberships.get(f"{team.id}\x1f{user.id}")
            if membership is None:
                raise NotFound(f"user '{user.id}' is not a member of team '{team.id}'", param="user_id")
            if role_of(actor) != "proxy_admin" and membership.role != "user":
                raise PermissionDenied("team admins may remove members with the role 'user' only",
                                       param="user_id")
            await tx.memberships.delete([membership.id])
            view = team_view(team, await members_of(tx, team.id))
            w.after(view)
        self._cache.invalidate_all()
        return view

    async def _user_for_member(self, tx: StoreTx, member: Member) -> User:
        """The member's user, created (as LiteLLM does, with the new-user defaults) when missing."""
        if member.user_id is not None:
            user = await tx.users.get(member.user_id)
        elif member.user_email is not None:
            found = await tx.users.find({"email": member.user_email}, limit=1)
            user = found[0] if found else None
        else:
            raise InvalidRequest("member: pass user_id or user_email", param="member")
        if user is None:
            user = self._defaults.new_user(member.user_id, member.user_email, self._clock())
            await tx.users.insert(user)
        return user


async def _team(tx: StoreTx, ref: str, param: str = "team_id") -> Team:
    """The team a caller named, by id or alias (``team_refs``)."""
    return await require_team(tx, ref, param)


async def _require_team_admin(tx: StoreTx, actor: Principal, team_id: str, action: str) -> None:
    if role_of(actor) == "proxy_admin":
        return
    membership = await tx.memberships.get(f"{team_id}\x1f{actor.user_id}") if actor.user_id else None
    if membership is None or membership.role != "admin" or role_of(actor) != "internal_user":
        raise PermissionDenied(f"{action} requires the proxy_admin role or being an admin of team "
                               f"'{team_id}'")
