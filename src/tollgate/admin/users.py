"""Users (LiteLLM ``/user/*``): written by proxy admins; read by admins, viewers and the user itself.

A new internal user without a budget gets ``litellm_settings.max_internal_user_budget`` per
``internal_user_budget_duration``, and any user but a proxy admin gets the fields of
``default_internal_user_params`` it was not given (LiteLLM's rules), whichever way it is created:
``/user/new``, onboarding, or as a new team member. Deleting a user deletes its keys.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import replace
from typing import Any

from tollgate.admin.access import (
    Clock,
    KeyCache,
    Standing,
    as_stored,
    can_read_all,
    require_admin,
    require_read_all,
)
from tollgate.admin.journal import Journal
from tollgate.admin.key_rules import refuse_spend
from tollgate.admin.keys import create_key, created_view, key_view, litellm_key_fields
from tollgate.admin.policies import apply_fields
from tollgate.admin.requests import GenerateKeyRequest, NewUserRequest, UpdateUserRequest
from tollgate.admin.team_refs import require_team
from tollgate.admin.user_defaults import NO_DEFAULTS, UserDefaults
from tollgate.admin.views import members_of, team_view, user_view
from tollgate.auth.principal import Principal
from tollgate.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from tollgate.store import Store, StoreTx
from tollgate.store.records import EMPTY_POLICY, ZERO, Membership, User

ID_CAP = 100  # user ids one /user/info call may name


class UserService:
    def __init__(self, journal: Journal, store: Store, cache: KeyCache, clock: Clock,
                 defaults: UserDefaults = NO_DEFAULTS, standing: Standing = as_stored) -> None:
        self._standing = standing
        self._journal = journal
        self._store = store
        self._cache = cache
        self._clock = clock
        self.defaults = defaults

    async def new_user(self, actor: Principal, body: NewUserRequest) -> dict[str, Any]:
        require_admin(actor, "creating a user")
        refuse_spend(body, ZERO)
        seeded = self.defaults.seed(body, body.user_role)
        assert isinstance(seeded, NewUserRequest)
        body = seeded
        now = self._clock()
        async with self._journal.write(actor, "/user/new") as w:
            tx = w.tx
            if body.user_email and await tx.users.count({"email": body.user_email}):
                raise Conflict(f"a user with email '{body.user_email}' already exists", param="user_email")
            if body.organization_id and await tx.orgs.get(body.organization_id) is None:
                raise NotFound(f"organization '{body.organization_id}' not found", param="organization_id")
            user = User(
                id=body.user_id or str(uuid.uuid4()), email=body.user_email, alias=body.user_alias,
                role=body.user_role, org_id=body.organization_id,
                policy=apply_fields(EMPTY_POLICY, body, now), created_at=now, updated_at=now,
            )
            await tx.users.insert(user)
            listed = [(await require_team(tx, ref, "teams")).id for ref in body.teams or ()]
            key_team = (await require_team(tx, body.team_id)).id if body.team_id else None
            team_ids = list(dict.fromkeys([*listed, *([key_team] if key_team else [])]))
            for team_id in team_ids:
                await tx.memberships.insert(Membership(team_id, user.id))
            key: dict[str, Any] = {}
            if body.auto_create_key:
                request = GenerateKeyRequest(
                    user_id=user.id, team_id=key_team, key_alias=body.key_alias, duration=body.duration
                )
                plaintext, record = await create_key(tx, actor, request, now)
                key = created_view(plaintext, record, body.duration)
            # LiteLLM's /user/new answer carries the key fields even when no key was made.
            shown = {**litellm_key_fields(user.policy), "send_invite_email": None, **key}
            view = {**shown, **user_view(user), "teams": team_ids}
            w.after(view, user.id)
        return view

    async def user_info(self, actor: Principal, user_ids: list[str]) -> dict[str, Any]:
        """LiteLLM's ``/user/info``: one user (``user_ids`` of one), several (``{"users": [...]}``),
        or none named: the caller's own user, or for a proxy admin without one every key and team."""
        if len(user_ids) > ID_CAP:
            raise InvalidRequest(f"user_ids: at most {ID_CAP} per call", param="user_ids")
        async with self._store.transaction() as tx:
            if not user_ids:
                if actor.user_id is None:
                    if actor.is_admin:
                        return await _everything(tx)
                    raise InvalidRequest("user_id: pass ?user_id=… (your key belongs to no user)",
                                         param="user_id")
                user_ids = [actor.user_id]
            for user_id in user_ids:
                if not (can_read_all(actor) or actor.user_id == user_id):
                    raise PermissionDenied(f"reading a user: you may only see your own user "
                                           f"({actor.user_id or 'none'})", param="user_id")
            found = [await _user_info(tx, user_id, self._standing) for user_id in dict.fromkeys(user_ids)]
        return found[0] if len(found) == 1 else {"users": found}

    async def list_users(
        self, actor: Principal, *, page: int = 1, page_size: int = 25, role: str | None = None
    ) -> dict[str, Any]:
        require_read_all(actor, "listing users")
        filters = {"role": role} if role else {}
        async with self._store.transaction() as tx:
            total = await tx.users.count(filters)
            users = await tx.users.find(filters, offset=(page - 1) * page_size, limit=page_size)
        return {"users": [user_view(u) for u in users], "total": total, "page": page,
                "page_size": page_size, "total_pages": math.ceil(total / page_size) if total else 0}

    async def update_user(self, actor: Principal, body: UpdateUserRequest) -> dict[str, Any]:
        require_admin(actor, "updating a user")
        now = self._clock()
        async with self._journal.write(actor, "/user/update") as w:
            user = await find_user(w.tx, body.user_id, body.user_email)
            refuse_spend(body, user.policy.spend)
            w.before(user.id, user_view(user))
            sent = body.model_fields_set
            changes: dict[str, Any] = {"policy": apply_fields(user.policy, body, now), "updated_at": now}
            for name, attr in (("user_email", "email"), ("user_alias", "alias"), ("user_role", "role")):
                if name in sent and getattr(body, name) is not None:
                    changes[attr] = getattr(body, name)
            user = replace(user, **changes)
            await w.tx.users.replace(user)
            view = user_view(user)
            w.after(view)
        self._cache.invalidate_all()  # every key of the user carries its policy
        return view

    async def delete_users(self, actor: Principal, user_ids: list[str]) -> dict[str, Any]:
        require_admin(actor, "deleting users")
        async with self._journal.write(actor, "/user/delete") as w:
            tx = w.tx
            before = []
            for user_id in user_ids:
                user = await tx.users.get(user_id)
                if user is None:
                    raise NotFound(f"user '{user_id}' not found", param="user_ids")
                before.append(user_view(user))
                keys = await tx.keys.find({"user_id": user_id})
                await tx.keys.delete([k.token for k in keys])
                memberships = await tx.memberships.find({"user_id": user_id})
                await tx.memberships.delete([m.id for m in memberships])
            w.before(",".join(user_ids)[:256], before)
            await tx.users.delete(user_ids)
            view = {"deleted_users": user_ids}
            w.after(view)
        self._cache.invalidate_all()
        return view


async def find_user(tx: StoreTx, user_id: str | None, email: str | None) -> User:
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


async def _user_info(tx: StoreTx, user_id: str, standing: Standing) -> dict[str, Any]:
    user = await tx.users.get(user_id)
    if user is None:
        raise NotFound(f"user '{user_id}' not found", param="user_id")
    keys = await tx.keys.find({"user_id": user_id})
    teams = [t for m in await tx.memberships.find({"user_id": user_id})
             if (t := await tx.teams.get(m.team_id)) is not None]
    team_views = [team_view(t, await members_of(tx, t.id)) for t in teams]
    shown = await standing(user_view(user), "user", user.id, user.policy)
    return {"user_id": user_id, "user_info": shown, "keys": [key_view(k) for k in keys],
            "teams": team_views}


async def _everything(tx: StoreTx) -> dict[str, Any]:
    keys = await tx.keys.find()
    teams = await tx.teams.find()
    return {"user_id": None, "user_info": None, "keys": [key_view(k) for k in keys],
            "teams": [team_view(t, await members_of(tx, t.id)) for t in teams]}
