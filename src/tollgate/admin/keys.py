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

from tollgate.admin.access import Clock, KeyCache, can_read_all, require_admin, require_key_writer
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
from tollgate.auth.keys import hash_key
from tollgate.auth.principal import Principal
from tollgate.config.durations import expiry
from tollgate.errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from tollgate.store import Store, StoreTx
from tollgate.store.records import EMPTY_POLICY, VirtualKey


def new_plaintext() -> str:
    return "sk-" + secrets.token_urlsafe(32)


def key_name(plaintext: str) -> str:
    return f"sk-...{plaintext[-4:]}"


def token_of(key: str) -> str:
    """Accept a key as its plaintext (``sk-…``) or as its stored hash."""
    if len(key) == 64 and all(c in "0123456789abcdef" for c in key):
        return key
    return hash_key(key)


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
    }


def created_view(plaintext: str, k: VirtualKey, duration: str | None) -> dict[str, Any]:
    return {**key_view(k), "key": plaintext, "token_id": k.token, "duration": duration}


async def create_key(
    tx: StoreTx, actor: Principal, body: KeyFields, now: datetime, plaintext: str | None = None
) -> tuple[str, VirtualKey]:
    """Validate and insert one key inside the caller's transaction; returns (plaintext, record)."""
    owner = require_key_writer(actor, "creating a key")
    user_id = body.user_id
    if owner is not None:
        if user_id not in (None, owner):
            raise PermissionDenied(f"you may create keys only for yourself ({owner}), not for '{user_id}'")
        user_id = owner
    if plaintext is None:
        plaintext = new_plaintext()
    elif not plaintext.startswith("sk-"):
        raise InvalidRequest("key: a custom key must start with 'sk-'", param="key")
    policy = apply_fields(EMPTY_POLICY, body, now)
    org_id = body.organization_id
    if user_id is not None and (user := await tx.users.get(user_id)) is not None:
        org_id = org_id or user.org_id
        if owner is not None:
            check_within(policy, user.policy, "your user")
    if body.team_id is not None:
        team = await tx.teams.get(body.team_id)
        if team is None:
            raise NotFound(f"team '{body.team_id}' not found", param="team_id")
        if owner is not None:
            if await tx.memberships.get(f"{team.id}\x1f{owner}") is None:
                raise PermissionDenied(f"you are not a member of team '{team.id}'")
            check_within(policy, team.policy, f"team '{team.id}'")
        org_id = org_id or team.org_id
    await _check_alias(tx, body.key_alias, None)
    record = VirtualKey(
        token=hash_key(plaintext), key_name=key_name(plaintext), key_alias=body.key_alias,
        user_id=user_id, team_id=body.team_id, org_id=org_id, expires=_expires(body, now),
        policy=policy, created_by=actor.user_id or actor.kind, created_at=now, updated_at=now,
    )
    await tx.keys.insert(record)
    return plaintext, record


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
    def __init__(
        self, store: Store, cache: KeyCache, clock: Clock, guardrails: frozenset[str] | None = None
    ) -> None:
        self._store = store
        self._cache = cache
        self._clock = clock
        self._guardrails = guardrails  # the configured guardrail names (None: not checked)

    async def generate(self, actor: Principal, body: GenerateKeyRequest) -> dict[str, Any]:
        async with self._store.transaction() as tx:
            plaintext, record = await create_key(tx, actor, body, self._clock(), body.key)
            check_guardrails(EMPTY_POLICY, record.policy, self._guardrails)
        return created_view(plaintext, record, body.duration)

    async def update(self, actor: Principal, body: UpdateKeyRequest) -> dict[str, Any]:
        now = self._clock()
        async with self._store.transaction() as tx:
            current = await self._writable(tx, actor, body.key, "updating a key")
            sent = body.model_fields_set
            owner = require_key_writer(actor, "updating a key")
            if owner is not None and "user_id" in sent and body.user_id != owner:
                raise PermissionDenied("you may not move a key to another user")
            policy = apply_fields(current.policy, body, now)
            check_guardrails(current.policy, policy, self._guardrails)
            if owner is not None:
                check_guardrails_kept(current.policy, policy)
            if owner is not None and (user := await tx.users.get(owner)) is not None:
                check_within(policy, user.policy, "your user")
            if "key_alias" in sent:
                await _check_alias(tx, body.key_alias, current.token)
            changes: dict[str, Any] = {"policy": policy, "updated_at": now}
            for field, attr in (("key_alias", "key_alias"), ("user_id", "user_id"),
                                ("team_id", "team_id"), ("organization_id", "org_id")):
                if field in sent:
                    changes[attr] = getattr(body, field)
            if "duration" in sent or "expires" in sent:
                changes["expires"] = _expires(body, now)
            if changes.get("team_id") and await tx.teams.get(changes["team_id"]) is None:
                raise NotFound(f"team '{changes['team_id']}' not found", param="team_id")
            record = replace(current, **changes)
            await tx.keys.replace(record)
        self._cache.invalidate(record.token)
        return {"key": body.key, **key_view(record)}

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
        return {"key": key or token, "info": key_view(record)}

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
        filters = {k: v for k, v in (("user_id", user_id), ("team_id", team_id), ("key_alias", key_alias))
                   if v is not None}
        async with self._store.transaction() as tx:
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
        async with self._store.transaction() as tx:
            tokens: list[str] = []
            for key in body.keys or ():
                tokens.append((await self._writable(tx, actor, key, "deleting a key")).token)
            for alias in body.key_aliases or ():
                found = await tx.keys.find({"key_alias": alias})
                if not found:
                    raise NotFound(f"key with alias '{alias}' not found", param="key_aliases")
                tokens.append((await self._writable(tx, actor, found[0].token, "deleting a key")).token)
            await tx.keys.delete(tokens)
        for token in tokens:
            self._cache.invalidate(token)
        return {"deleted_keys": [*(body.keys or ()), *(body.key_aliases or ())]}

    async def set_blocked(self, actor: Principal, key: str, blocked: bool) -> dict[str, Any]:
        require_admin(actor, "blocking a key" if blocked else "unblocking a key")
        async with self._store.transaction() as tx:
            current = await tx.keys.get(token_of(key))
            if current is None:
                raise NotFound("key not found", param="key")
            policy = replace(current.policy, blocked=blocked)
            record = replace(current, policy=policy, updated_at=self._clock())
            await tx.keys.replace(record)
        self._cache.invalidate(record.token)
        return key_view(record)

    async def regenerate(self, actor: Principal, key: str, body: RegenerateKeyRequest) -> dict[str, Any]:
        now = self._clock()
        plaintext = body.new_key or new_plaintext()
        if not plaintext.startswith("sk-"):
            raise InvalidRequest("new_key: a custom key must start with 'sk-'", param="new_key")
        async with self._store.transaction() as tx:
            current = await self._writable(tx, actor, key, "regenerating a key")
            policy = apply_fields(current.policy, body, now)
            owner = require_key_writer(actor, "regenerating a key")
            check_guardrails(current.policy, policy, self._guardrails)
            if owner is not None:
                check_guardrails_kept(current.policy, policy)
            if owner is not None and (user := await tx.users.get(owner)) is not None:
                check_within(policy, user.policy, "your user")
            alias = body.key_alias if "key_alias" in body.model_fields_set else current.key_alias
            await tx.keys.delete([current.token])
            await _check_alias(tx, alias, None)
            record = replace(
                current, token=hash_key(plaintext), key_name=key_name(plaintext), key_alias=alias,
                policy=policy, updated_at=now,
                expires=expiry(body.duration, now) if body.duration else current.expires,
            )
            await tx.keys.insert(record)
        self._cache.invalidate(current.token)
        return created_view(plaintext, record, body.duration)

    async def _writable(self, tx: StoreTx, actor: Principal, key: str, action: str) -> VirtualKey:
        owner = require_key_writer(actor, action)
        record = await tx.keys.get(token_of(key))
        if record is None:
            raise NotFound("key not found", param="key")
        if owner is not None and record.user_id != owner:
            raise PermissionDenied(f"{action}: the key belongs to another user")
        return record
