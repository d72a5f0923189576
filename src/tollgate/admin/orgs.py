"""Users, teams and organisations (LiteLLM ``/user/*``, ``/team/*``, ``/organization/*``).

Writes are for proxy admins; reads for admins and viewers, and for a user's own record and teams.
Deleting a user or team deletes its keys (and drops them from the authenticator's cache) in the
same transaction.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import replace
from typing import Any

from tollgate.admin.access import (
    Clock,
    KeyCache,
    can_read_all,
    require_admin,
    require_read_all,
    require_self,
)
from tollgate.admin.keys import create_key, created_view, key_view
from tollgate.admin.policies import apply_fields, check_guardrails, iso, policy_view
from tollgate.admin.requests import (
    GenerateKeyRequest,
    Member,
    MemberAddRequest,
    MemberDeleteRequest,
    NewOrgRequest,
    NewTeamRequest,
    NewUserRequest,
    UpdateOrgRequest,
    UpdateTeamRequest,
    UpdateUserRequest,
)
from tollgate.auth.principal import Principal
from tollgate.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from tollgate.store import Store, StoreTx
from tollgate.store.records import EMPTY_POLICY, Membership, Organization, Team, User


def user_view(u: User) -> dict[str, Any]:
    return {
        "user_id": u.id, "user_email": u.email, "user_alias": u.alias, "user_role": u.role,
        "organization_id": u.org_id, "created_at": iso(u.created_at), "updated_at": iso(u.updated_at),
        **policy_view(u.policy),
    }


def team_view(t: Team, members: list[Membership]) -> dict[str, Any]:
    return {
        "team_id": t.id, "team_alias": t.alias, "organization_id": t.org_id,
        "admins": [m.user_id for m in members if m.role == "admin"],
        "members": [m.user_id for m in members],
        "members_with_roles": [{"role": m.role, "user_id": m.user_id} for m in members],
        "created_at": iso(t.created_at), "updated_at": iso(t.updated_at), **policy_view(t.policy),
    }


def org_view(o: Organization, teams: list[Team]) -> dict[str, Any]:
    return {
        "organization_id": o.id, "organization_alias": o.alias,
        "teams": [{"team_id": t.id, "team_alias": t.alias} for t in teams],
        "created_at": iso(o.created_at), "updated_at": iso(o.updated_at), **policy_view(o.policy),
    }


async def _members(tx: StoreTx, team_id: str) -> list[Membership]:
    return await tx.memberships.find({"team_id": team_id})


async def _user_for_member(tx: StoreTx, member: Member, clock: Clock) -> User:
    """The member's user, created (as LiteLLM does) when it does not exist yet."""
    if member.user_id is not None:
        user = await tx.users.get(member.user_id)
    elif member.user_email is not None:
        found = await tx.users.find({"email": member.user_email}, limit=1)
        user = found[0] if found else None
    else:
        raise InvalidRequest("member: pass user_id or user_email", param="member")
    if user is None:
        now = clock()
        user = User(member.user_id or str(uuid.uuid4()), member.user_email, created_at=now, updated_at=now)
        await tx.users.insert(user)
    return user


class OrgService:
    def __init__(
        self, store: Store, cache: KeyCache, clock: Clock, guardrails: frozenset[str] | None = None
    ) -> None:
        self._store = store
        self._cache = cache
        self._clock = clock
        self._guardrails = guardrails  # the configured guardrail names (None: not checked)

    # users --------------------------------------------------------------------------------

    async def new_user(self, actor: Principal, body: NewUserRequest) -> dict[str, Any]:
        require_admin(actor, "creating a user")
        now = self._clock()
        async with self._store.transaction() as tx:
            if body.user_email and await tx.users.count({"email": body.user_email}):
                raise Conflict(f"a user with email '{body.user_email}' already exists", param="user_email")
            user = User(
                id=body.user_id or str(uuid.uuid4()), email=body.user_email, alias=body.user_alias,
                role=body.user_role, org_id=body.organization_id,
                policy=apply_fields(EMPTY_POLICY, body, now), created_at=now, updated_at=now,
            )
            await tx.users.insert(user)
            team_ids = [*(body.teams or ()), *([body.team_id] if body.team_id else [])]
            for team_id in dict.fromkeys(team_ids):
                if await tx.teams.get(team_id) is None:
                    raise NotFound(f"team '{team_id}' not found", param="teams")
                await tx.memberships.insert(Membership(team_id, user.id))
            key: dict[str, Any] = {}
            if body.auto_create_key:
                request = GenerateKeyRequest(
                    user_id=user.id, team_id=body.team_id, key_alias=body.key_alias, duration=body.duration
                )
                plaintext, record = await create_key(tx, actor, request, now)
                key = created_view(plaintext, record, body.duration)
        return {**key, **user_view(user), "teams": list(dict.fromkeys(team_ids))}

    async def user_info(self, actor: Principal, user_id: str | None) -> dict[str, Any]:
        user_id = user_id or actor.user_id
        require_self(actor, user_id, "reading a user")
        assert user_id is not None  # require_self refuses None for non-admins
        async with self._store.transaction() as tx:
            user = await tx.users.get(user_id)
            if user is None:
                raise NotFound(f"user '{user_id}' not found", param="user_id")
            keys = await tx.keys.find({"user_id": user_id})
            teams = [t for m in await tx.memberships.find({"user_id": user_id})
                     if (t := await tx.teams.get(m.team_id)) is not None]
            team_views = [team_view(t, await _members(tx, t.id)) for t in teams]
        return {"user_id": user_id, "user_info": user_view(user), "keys": [key_view(k) for k in keys],
                "teams": team_views}

    async def list_users(
        self, actor: Principal, *, page: int = 1, page_size: int = 25, role: str | None = None
    ) -> dict[str, Any]:
        require_read_all(actor, "listing users")
        if page < 1 or not 1 <= page_size <= 100:
            raise InvalidRequest("page must be >= 1 and page_size between 1 and 100", param="page_size")
        filters = {"role": role} if role else {}
        async with self._store.transaction() as tx:
            total = await tx.users.count(filters)
            users = await tx.users.find(filters, offset=(page - 1) * page_size, limit=page_size)
        return {"users": [user_view(u) for u in users], "total": total, "page": page,
                "page_size": page_size, "total_pages": math.ceil(total / page_size) if total else 0}

    async def update_user(self, actor: Principal, body: UpdateUserRequest) -> dict[str, Any]:
        require_admin(actor, "updating a user")
        now = self._clock()
        async with self._store.transaction() as tx:
            user = await self._find_user(tx, body.user_id, body.user_email)
            sent = body.model_fields_set
            changes: dict[str, Any] = {"policy": apply_fields(user.policy, body, now), "updated_at": now}
            for field, attr in (("user_email", "email"), ("user_alias", "alias"), ("user_role", "role")):
                if field in sent and getattr(body, field) is not None:
                    changes[attr] = getattr(body, field)
            user = replace(user, **changes)
            await tx.users.replace(user)
        self._cache.invalidate_all()  # every key of the user carries its policy
        return user_view(user)

    async def delete_users(self, actor: Principal, user_ids: list[str]) -> dict[str, Any]:
        require_admin(actor, "deleting users")
        async with self._store.transaction() as tx:
            for user_id in user_ids:
                if await tx.users.get(user_id) is None:
                    raise NotFound(f"user '{user_id}' not found", param="user_ids")
                keys = await tx.keys.find({"user_id": user_id})
                await tx.keys.delete([k.token for k in keys])
                memberships = await tx.memberships.find({"user_id": user_id})
                await tx.memberships.delete([m.id for m in memberships])
            await tx.users.delete(user_ids)
        self._cache.invalidate_all()
        return {"deleted_users": user_ids}

    async def _find_user(self, tx: StoreTx, user_id: str | None, email: str | None) -> User:
        if user_id is not None:
            user = await tx.users.get(user_id)
        elif email is not None:
            found = await tx.users.find({"email": email}, limit=1)
            user = found[0] if found else None
        else:
            raise InvalidRequest("user_id: pass user_id or user_email", param="user_id")
        if user is None:
            raise NotFound(f"user '{user_id or email}' not found", param="user_id")
        return user

    # teams --------------------------------------------------------------------------------

    async def new_team(self, actor: Principal, body: NewTeamRequest) -> dict[str, Any]:
        require_admin(actor, "creating a team")
        now = self._clock()
        async with self._store.transaction() as tx:
            if body.organization_id and await tx.orgs.get(body.organization_id) is None:
                raise NotFound(f"organization '{body.organization_id}' not found", param="organization_id")
            if body.team_alias and await tx.teams.count({"alias": body.team_alias}):
                raise Conflict(f"a team with alias '{body.team_alias}' already exists", param="team_alias")
            team = Team(body.team_id or str(uuid.uuid4()), body.team_alias, body.organization_id,
                        apply_fields(EMPTY_POLICY, body, now), now, now)
            check_guardrails(EMPTY_POLICY, team.policy, self._guardrails)
            await tx.teams.insert(team)
            for member in body.members_with_roles or ():
                user = await _user_for_member(tx, member, self._clock)
                await tx.memberships.insert(Membership(team.id, user.id, member.role))
            members = await _members(tx, team.id)
        return team_view(team, members)

    async def team_info(self, actor: Principal, team_id: str) -> dict[str, Any]:
        async with self._store.transaction() as tx:
            team = await tx.teams.get(team_id)
            if team is None:
                raise NotFound(f"team '{team_id}' not found", param="team_id")
            members = await _members(tx, team_id)
            if not can_read_all(actor) and actor.user_id not in {m.user_id for m in members}:
                raise PermissionDenied(f"you are not a member of team '{team_id}'")
            keys = await tx.keys.find({"team_id": team_id})
        return {"team_id": team_id, "team_info": team_view(team, members),
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
            return [team_view(t, await _members(tx, t.id)) for t in teams]

    async def update_team(self, actor: Principal, body: UpdateTeamRequest) -> dict[str, Any]:
        require_admin(actor, "updating a team")
        now = self._clock()
        async with self._store.transaction() as tx:
            team = await self._team(tx, body.team_id)
            changes: dict[str, Any] = {"policy": apply_fields(team.policy, body, now), "updated_at": now}
            check_guardrails(team.policy, changes["policy"], self._guardrails)
            if "team_alias" in body.model_fields_set:
                changes["alias"] = body.team_alias
            if "organization_id" in body.model_fields_set:
                changes["org_id"] = body.organization_id
            team = replace(team, **changes)
            await tx.teams.replace(team)
            members = await _members(tx, team.id)
        self._cache.invalidate_all()
        return team_view(team, members)

    async def set_team_blocked(self, actor: Principal, team_id: str, blocked: bool) -> dict[str, Any]:
        require_admin(actor, "blocking a team")
        async with self._store.transaction() as tx:
            team = await self._team(tx, team_id)
            team = replace(team, policy=replace(team.policy, blocked=blocked), updated_at=self._clock())
            await tx.teams.replace(team)
            members = await _members(tx, team.id)
        self._cache.invalidate_all()
        return team_view(team, members)

    async def delete_teams(self, actor: Principal, team_ids: list[str]) -> dict[str, Any]:
        require_admin(actor, "deleting teams")
        async with self._store.transaction() as tx:
            for team_id in team_ids:
                await self._team(tx, team_id)
                await tx.keys.delete([k.token for k in await tx.keys.find({"team_id": team_id})])
                await tx.memberships.delete([m.id for m in await _members(tx, team_id)])
            await tx.teams.delete(team_ids)
        self._cache.invalidate_all()
        return {"deleted_teams": team_ids}

    async def add_members(self, actor: Principal, body: MemberAddRequest) -> dict[str, Any]:
        require_admin(actor, "adding team members")
        members = body.member if isinstance(body.member, list) else [body.member]
        async with self._store.transaction() as tx:
            team = await self._team(tx, body.team_id)
            updated: list[User] = []
            for member in members:
                user = await _user_for_member(tx, member, self._clock)
                existing = await tx.memberships.get(f"{team.id}\x1f{user.id}")
                if existing is not None:
                    message = f"user '{user.id}' is already a member of team '{team.id}'"
                    raise Conflict(message, param="member")
                await tx.memberships.insert(Membership(team.id, user.id, member.role))
                updated.append(user)
            current = await _members(tx, team.id)
        self._cache.invalidate_all()
        return {**team_view(team, current), "updated_users": [user_view(u) for u in updated],
                "updated_team_memberships": [{"team_id": team.id, "user_id": u.id} for u in updated]}

    async def delete_member(self, actor: Principal, body: MemberDeleteRequest) -> dict[str, Any]:
        require_admin(actor, "removing team members")
        async with self._store.transaction() as tx:
            team = await self._team(tx, body.team_id)
            user = await self._find_user(tx, body.user_id, body.user_email)
            if not await tx.memberships.delete([f"{team.id}\x1f{user.id}"]):
                raise NotFound(f"user '{user.id}' is not a member of team '{team.id}'", param="user_id")
            current = await _members(tx, team.id)
        self._cache.invalidate_all()
        return team_view(team, current)

    async def _team(self, tx: StoreTx, team_id: str) -> Team:
        team = await tx.teams.get(team_id)
        if team is None:
            raise NotFound(f"team '{team_id}' not found", param="team_id")
        return team

    # organisations ------------------------------------------------------------------------

    async def new_org(self, actor: Principal, body: NewOrgRequest) -> dict[str, Any]:
        require_admin(actor, "creating an organization")
        now = self._clock()
        org = Organization(body.organization_id or str(uuid.uuid4()), body.organization_alias,
                           apply_fields(EMPTY_POLICY, body, now), now, now)
        async with self._store.transaction() as tx:
            await tx.orgs.insert(org)
        return org_view(org, [])

    async def org_info(self, actor: Principal, organization_id: str) -> dict[str, Any]:
        require_read_all(actor, "reading an organization")
        async with self._store.transaction() as tx:
            org = await self._org(tx, organization_id)
            return org_view(org, await tx.teams.find({"org_id": org.id}))

    async def list_orgs(self, actor: Principal) -> list[dict[str, Any]]:
        require_read_all(actor, "listing organizations")
        async with self._store.transaction() as tx:
            return [org_view(o, await tx.teams.find({"org_id": o.id})) for o in await tx.orgs.find()]

    async def update_org(self, actor: Principal, body: UpdateOrgRequest) -> dict[str, Any]:
        require_admin(actor, "updating an organization")
        now = self._clock()
        async with self._store.transaction() as tx:
            org = await self._org(tx, body.organization_id)
            changes: dict[str, Any] = {"policy": apply_fields(org.policy, body, now), "updated_at": now}
            if "organization_alias" in body.model_fields_set:
                changes["alias"] = body.organization_alias
            org = replace(org, **changes)
            await tx.orgs.replace(org)
            teams = await tx.teams.find({"org_id": org.id})
        self._cache.invalidate_all()
        return org_view(org, teams)

    async def delete_orgs(self, actor: Principal, organization_ids: list[str]) -> dict[str, Any]:
        require_admin(actor, "deleting organizations")
        async with self._store.transaction() as tx:
            for org_id in organization_ids:
                await self._org(tx, org_id)
                teams = await tx.teams.count({"org_id": org_id})
                if teams:
                    raise Conflict(f"organization '{org_id}' still has {teams} team(s); delete them first")
            await tx.orgs.delete(organization_ids)
        self._cache.invalidate_all()
        return {"deleted_organizations": organization_ids}

    async def _org(self, tx: StoreTx, org_id: str) -> Organization:
        org = await tx.orgs.get(org_id)
        if org is None:
            raise NotFound(f"organization '{org_id}' not found", param="organization_id")
        return org
