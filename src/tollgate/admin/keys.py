"""Virtual keys: generate, update, info, list, delete, block, regenerate (LiteLLM ``/key/*``).

A key's plaintext exists only in the response that creates it; the store keeps its SHA-256
(``token``), which LiteLLM also returns in key responses. Internal users manage only their own
keys, and may not grant more models or higher limits than their user and team hold.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import replace
from datetime import datetime
from typing import Any

from tollgate.admin.access import (
    Clock,
    KeyCache,
    Standing,
    as_stored,
    can_read_all,
    require_admin,
    require_key_writer,
)
from tollgate.admin.journal import Journal
from tollgate.admin.key_rules import (
    NO_BOUNDS,
    KeyBounds,
    check_owner_update,
    check_tightens,
    refuse_admin_fields,
    refuse_spend,
)
from tollgate.admin.policies import (
    apply_fields,
    check_guardrails,
    check_guardrails_kept,
    check_within,
    iso,
    policy_view,
)
from tollgate.admin.requests import (
    DeleteKeysRequest,
    GenerateKeyRequest,
    KeyFields,
    RegenerateKeyRequest,
    UpdateKeyRequest,
)
from tollgate.admin.team_refs import require_team, team_filter
from tollgate.admin.user_defaults import NO_DEFAULTS, UserDefaults
from tollgate.auth.keys import hash_key
from tollgate.auth.principal import Principal, guardrail_settings
from tollgate.config.durations import expiry
from tollgate.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from tollgate.store import Store, StoreTx
from tollgate.store.records import EMPTY_POLICY, ZERO, EntityPolicy, Team, User, VirtualKey


def new_plaintext() -> str:
    return "sk-" + secrets.token_urlsafe(32)


def key_name(plaintext: str) -> str:
    return f"sk-...{plaintext[-4:]}"


def token_of(key: str) -> str:
    """Accept a key as its plaintext (``sk-…``) or as its stored hash."""
    if len(key) == 64 and all(c in "0123456789abcdef" for c in key):
        return key
    return hash_key(key)


def litellm_key_fields(policy: EntityPolicy) -> dict[str, Any]:
    """LiteLLM key fields tollgate keeps no data for, with the values LiteLLM returns when they are
    unset; ``guardrails`` from the key's metadata, where LiteLLM keeps a key's guardrails."""
    return {
        "aliases": {}, "allowed_cache_controls": [], "config": {}, "permissions": {}, "model_max_budget": {},
        "guardrails": list(guardrail_settings(policy.metadata)[0]) or None,  # as policy_view shows them
    }


def key_view(k: VirtualKey) -> dict[str, Any]:
    return {
        "token": k.token,
        "key_name": k.key_name,
        "key_alias": k.key_alias,
        "user_id": k.user_id,
        "team_id": k.team_id,
        "organization_id": k.org_id,
        "expires": iso(k.expires),
        "created_by": k.created_by,
        "created_at": iso(k.created_at),
        "updated_at": iso(k.updated_at),
        **policy_view(k.policy),
        **litellm_key_fields(k.policy),
    }


def created_view(plaintext: str, k: VirtualKey, duration: str | None) -> dict[str, Any]:
    # tollgate sends no invitation e-mails: send_invite_email is always null (LiteLLM's unset value).
    return {**key_view(k), "key": plaintext, "token_id": k.token, "duration": duration,
            "send_invite_email": None}


async def create_key(
    tx: StoreTx, actor: Principal, body: KeyFields, now: datetime, plaintext: str | None = None,
    new_users: UserDefaults | None = None,
) -> tuple[str, VirtualKey]:
    """Validate and insert one key inside the caller's transaction; returns (plaintext, record).
    With ``new_users``, a ``user_id`` that names no user creates it (see ``_user_for_key``)."""
    owner = require_key_writer(actor, "creating a key")
    refuse_spend(body, ZERO)
    user_id = body.user_id
    if owner is not None:
        refuse_admin_fields(body)
        if user_id not in (None, owner):
            raise PermissionDenied(f"user_id: you may create keys only for yourself ({owner}), not for "
                                   f"'{user_id}'", param="user_id")
        user_id = owner
    if plaintext is None:
        plaintext = new_plaintext()
    elif not plaintext.startswith("sk-"):
        raise InvalidRequest("key: a custom key must start with 'sk-'", param="key")
    policy = apply_fields(EMPTY_POLICY, body, now)
    # Only an admin's key creates its user; an internal user's own user is never made here.
    user = await _user_for_key(tx, user_id, new_users if owner is None else None, now)
    team = await _team_for_key(tx, body.team_id, owner)
    org_id = await _org_for_key(tx, body.organization_id, owner, user, team)
    if owner is not None:
        if user is not None:
            check_within(policy, user.policy, "your user")
        if team is not None:
            check_within(policy, team.policy, f"team '{team.id}'")
    await _check_alias(tx, body.key_alias, None)
    record = VirtualKey(
        token=hash_key(plaintext), key_name=key_name(plaintext), key_alias=body.key_alias,
        user_id=user_id, team_id=team.id if team else None, org_id=org_id, expires=_expires(body, now),
        policy=policy, created_by=actor.user_id or actor.subject or actor.kind, created_at=now,
        updated_at=now,
    )
    await tx.keys.insert(record)
    return plaintext, record


async def _user_for_key(
    tx: StoreTx, user_id: str | None, new_users: UserDefaults | None, now: datetime
) -> User | None:
    """The key's user. A ``user_id`` that names no user is created (an internal user with the
    configured defaults, as ``/user/new`` makes one) when ``new_users`` is given: keys then never
    name a user that ``/user/info``, budgets and the web UI do not know."""
    if user_id is None:
        return None
    user = await tx.users.get(user_id)
    if user is None and new_users is not None:
        user = new_users.new_user(user_id, None, now)
        await tx.users.insert(user)
    return user


async def _team_for_key(tx: StoreTx, team_id: str | None, owner: str | None) -> Team | None:
    if team_id is None:
        return None
    team = await require_team(tx, team_id)
    if owner is not None and await tx.memberships.get(f"{team.id}\x1f{owner}") is None:
        raise PermissionDenied(f"team_id: you are not a member of team '{team.id}'", param="team_id")
    return team


async def _org_for_key(
    tx: StoreTx, org_id: str | None, owner: str | None, user: User | None, team: Team | None
) -> str | None:
    """The key's organisation: the one named (which must exist and agree with the team's), else the
    team's, else the user's. Internal users may name only their own or their team's."""
    derived = (team.org_id if team else None) or (user.org_id if user else None)
    if org_id is None:
        return derived
    if await tx.orgs.get(org_id) is None:
        raise NotFound(f"organization '{org_id}' not found", param="organization_id")
    if team is not None and team.org_id is not None and team.org_id != org_id:
        raise InvalidRequest(f"organization_id: team '{team.id}' belongs to organization '{team.org_id}'",
                             param="organization_id")
    if owner is not None and org_id not in {team.org_id if team else None, user.org_id if user else None}:
        raise PermissionDenied(f"organization_id: you do not belong to organization '{org_id}'",
                               param="organization_id")
    return org_id


def _expires(body: KeyFields | RegenerateKeyRequest, now: datetime) -> datetime | None:
    if body.duration:
        return expiry(body.duration, now)
    return getattr(body, "expires", None)


async def _check_alias(tx: StoreTx, alias: str | None, token: str | None) -> None:
    if alias is None:
        return
    for other in await tx.keys.find({"key_alias": alias}):
        if other.token != token:
            raise Conflict(f"Key with alias '{alias}' already exists.", param="key_alias")


class KeyService:
    def __init__(self, journal: Journal, store: Store, cache: KeyCache, clock: Clock,
                 bounds: KeyBounds = NO_BOUNDS, standing: Standing = as_stored,
                 guardrails: frozenset[str] | None = None, new_users: UserDefaults = NO_DEFAULTS) -> None:
        self._new_users = new_users  # what a key's user_id that names no user is created with
        self._standing = standing
        self._journal = journal
        self._store = store
        self._cache = cache
        self._clock = clock
        self._bounds = bounds
        self._guardrails = guardrails  # the configured guardrail names (None: not checked)

    async def generate(self, actor: Principal, body: GenerateKeyRequest) -> dict[str, Any]:
        now = self._clock()
        body = self._bounds.apply(body, now)
        async with self._journal.write(actor, "/key/generate") as w:
            plaintext, record = await create_key(w.tx, actor, body, now, body.key, self._new_users)
            check_guardrails(EMPTY_POLICY, record.policy, self._guardrails)
            view = created_view(plaintext, record, body.duration)
            w.after(view, record.token)
        return view

    async def update(self, actor: Principal, body: UpdateKeyRequest) -> dict[str, Any]:
        now = self._clock()
        async with self._journal.write(actor, "/key/update") as w:
            tx = w.tx
            current = await self._writable(tx, actor, body.key, "updating a key")
            w.before(current.token, key_view(current))
            refuse_spend(body, current.policy.spend)
            self._bounds.refuse_over(body, now)
            owner = require_key_writer(actor, "updating a key")
            policy = apply_fields(current.policy, body, now)
            check_guardrails(current.policy, policy, self._guardrails)
            sent = body.model_fields_set
            if owner is not None:
                check_owner_update(body, current, owner, now)
                await self._check_owner_policy(tx, policy, current, owner)
            if "key_alias" in sent:
                await _check_alias(tx, body.key_alias, current.token)
            changes: dict[str, Any] = {"policy": policy, "updated_at": now}
            if "key_alias" in sent:
                changes["key_alias"] = body.key_alias
            if "user_id" in sent:
                changes["user_id"] = body.user_id
                await _user_for_key(tx, body.user_id, self._new_users if owner is None else None, now)
            if sent & {"team_id", "organization_id"}:
                user_id = changes.get("user_id", current.user_id)
                user = await tx.users.get(user_id) if user_id else None
                team = await _team_for_key(tx, body.team_id if "team_id" in sent else current.team_id, None)
                changes["team_id"] = team.id if team else None
                org = body.organization_id if "organization_id" in sent else None
                changes["org_id"] = await _org_for_key(tx, org, None, user, team)
            if sent & {"duration", "expires"}:
                changes["expires"] = _expires(body, now)
            record = replace(current, **changes)
            await tx.keys.replace(record)
            view = {"key": body.key, **key_view(record)}
            w.after(view)
        self._cache.invalidate(record.token)
        return view

    async def _check_owner_policy(self, tx: StoreTx, policy: EntityPolicy, current: VirtualKey,
                                  owner: str) -> None:
        check_tightens(policy, current.policy)
        check_guardrails_kept(current.policy, policy)
        if (user := await tx.users.get(owner)) is not None:
            check_within(policy, user.policy, "your user")
        if current.team_id and (team := await tx.teams.get(current.team_id)) is not None:
            check_within(policy, team.policy, f"team '{team.id}'")

    async def info(self, actor: Principal, key: str | None) -> dict[str, Any]:
        token = token_of(key) if key else actor.key_hash
        if token is None:
            raise InvalidRequest("key: pass ?key=<key> to look up", param="key")
        async with self._store.transaction() as tx:
            record = await tx.keys.get(token)
        if record is None:
            raise NotFound("key not found", param="key")
        if not (can_read_all(actor) or token == actor.key_hash
                or (actor.user_id is not None and record.user_id == actor.user_id)):
            raise PermissionDenied("you may only look up your own keys")
        info = await self._standing(key_view(record), "key", record.token, record.policy)
        return {"key": key or token, "info": info}

    async def list_keys(
        self,
        actor: Principal,
        *,
        page: int = 1,
        size: int = 10,
        user_id: str | None = None,
        team_id: str | None = None,
        key_alias: str | None = None,
        return_full_object: bool = False,
    ) -> dict[str, Any]:
        if page < 1 or not 1 <= size <= 100:
            raise InvalidRequest("page must be >= 1 and size between 1 and 100", param="size")
        if not can_read_all(actor):
            if actor.user_id is None or user_id not in (None, actor.user_id):
                raise PermissionDenied("you may only list your own keys")
            user_id = actor.user_id
        async with self._store.transaction() as tx:
            team_id = await team_filter(tx, team_id)
            filters = {k: v for k, v in (("user_id", user_id), ("team_id", team_id), ("key_alias", key_alias))
                       if v is not None}
            total = await tx.keys.count(filters)
            rows = await tx.keys.find(filters, offset=(page - 1) * size, limit=size)
        keys: list[Any] = [key_view(k) for k in rows] if return_full_object else [k.token for k in rows]
        return {
            "keys": keys, "total_count": total, "current_page": page,
            "total_pages": math.ceil(total / size) if total else 0,
        }

    async def delete(self, actor: Principal, body: DeleteKeysRequest) -> dict[str, Any]:
        if not body.keys and not body.key_aliases:
            raise InvalidRequest("keys: pass 'keys' or 'key_aliases'", param="keys")
        async with self._journal.write(actor, "/key/delete") as w:
            tx = w.tx
            found: list[VirtualKey] = []
            for key in body.keys or ():
                found.append(await self._writable(tx, actor, key, "deleting a key"))
            for alias in body.key_aliases or ():
                named = await tx.keys.find({"key_alias": alias})
                if not named:
                    raise NotFound(f"key with alias '{alias}' not found", param="key_aliases")
                found.append(await self._writable(tx, actor, named[0].token, "deleting a key"))
            tokens = [k.token for k in found]
            w.before(",".join(tokens)[:256], [key_view(k) for k in found])
            await tx.keys.delete(tokens)
            view = {"deleted_keys": [*(body.keys or ()), *(body.key_aliases or ())]}
            w.after(view)
        for token in tokens:
            self._cache.invalidate(token)
        return view

    async def set_blocked(self, actor: Principal, key: str, blocked: bool) -> dict[str, Any]:
        require_admin(actor, "blocking a key" if blocked else "unblocking a key")
        async with self._journal.write(actor, "/key/block" if blocked else "/key/unblock") as w:
            current = await w.tx.keys.get(token_of(key))
            if current is None:
                raise NotFound("key not found", param="key")
            w.before(current.token, key_view(current))
            policy = replace(current.policy, blocked=blocked)
            record = replace(current, policy=policy, updated_at=self._clock())
            await w.tx.keys.replace(record)
            view = key_view(record)
            w.after(view)
        self._cache.invalidate(record.token)
        return view

    async def regenerate(self, actor: Principal, key: str, body: RegenerateKeyRequest) -> dict[str, Any]:
        now = self._clock()
        plaintext = body.new_key or new_plaintext()
        if not plaintext.startswith("sk-"):
            raise InvalidRequest("new_key: a custom key must start with 'sk-'", param="new_key")
        body = self._bounds.apply(body, now) if body.model_fields_set - {"key", "new_key"} else body
        async with self._journal.write(actor, "/key/regenerate") as w:
            tx = w.tx
            current = await self._writable(tx, actor, key, "regenerating a key")
            w.before(current.token, key_view(current))
            refuse_spend(body, current.policy.spend)
            policy = apply_fields(current.policy, body, now)
            owner = require_key_writer(actor, "regenerating a key")
            check_guardrails(current.policy, policy, self._guardrails)
            if owner is not None:
                check_owner_update(body, current, owner, now)
                await self._check_owner_policy(tx, policy, current, owner)
            alias = body.key_alias if "key_alias" in body.model_fields_set else current.key_alias
            await tx.keys.delete([current.token])
            await _check_alias(tx, alias, None)
            record = replace(
                current, token=hash_key(plaintext), key_name=key_name(plaintext), key_alias=alias,
                policy=policy, updated_at=now,
                expires=expiry(body.duration, now) if body.duration else current.expires,
            )
            await tx.keys.insert(record)
            view = created_view(plaintext, record, body.duration)
            w.after(view)
        self._cache.invalidate(current.token)
        return view

    async def _writable(self, tx: StoreTx, actor: Principal, key: str, action: str) -> VirtualKey:
        owner = require_key_writer(actor, action)
        record = await tx.keys.get(token_of(key))
        if record is None:
            raise NotFound("key not found", param="key")
        if owner is not None and record.user_id != owner:
            raise PermissionDenied(f"{action}: the key belongs to another user")
        return record
