"""Master-key and virtual-key authentication.

``KeyAuthenticator`` turns a credential (found by ``bearer.credential_from_headers``) into a
``Principal``. The master key is compared in constant time. Virtual keys are looked
up by their SHA-256 and the resulting principals cached (bounded, with a TTL), so the hot path
does not touch the database; admin writes call ``invalidate``/``invalidate_all``. Across replicas,
the Redis pub/sub listener (``auth/invalidation.py``) calls the same two methods when another replica
publishes a change — that is the only seam cross-replica invalidation needs.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tollgate.auth.principal import (
    MASTER,
    OPEN,
    Budget,
    Entity,
    EntityKind,
    Limits,
    Principal,
    Role,
    guardrail_settings,
)
from tollgate.errors import AuthenticationFailed
from tollgate.store import Store
from tollgate.store.records import EntityPolicy


def hash_key(key: str) -> str:
    """The stored form of a virtual key: its SHA-256, hex (LiteLLM's token hash)."""
    return hashlib.sha256(key.encode()).hexdigest()


def entity_of(kind: EntityKind, entity_id: str, policy: EntityPolicy, alias: str | None = None) -> Entity:
    """The enforcement layer's view of a stored policy."""
    guardrails, locked = guardrail_settings(policy.metadata)
    return Entity(
        kind=kind,
        id=entity_id,
        models=policy.models,
        limits=Limits(policy.rpm, policy.tpm, policy.input_tpm, policy.output_tpm, policy.max_parallel),
        model_limits={
            model: Limits(v.get("rpm"), v.get("tpm"), v.get("input_tpm"), v.get("output_tpm"),
                          v.get("max_parallel"))
            for model, v in policy.model_limits.items()
        },
        budgets=tuple(Budget(b.max_budget, b.duration) for b in policy.all_budgets()),
        soft_budget=policy.soft_budget,
        alias=alias,
        guardrails=guardrails,
        guardrails_locked=locked,
    )


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal | None
    refusal: str | None  # why the key is refused (unknown, blocked, …), when it is
    expires: datetime | None
    cached_until: float


class KeyAuthenticator:
    """``authenticate(credential) -> Principal``: master key, virtual key, or OPEN without a master key.

    ``clock`` (monotonic seconds) runs the cache; ``now`` (UTC) judges key expiry.
    """

    def __init__(
        self,
        master_key: str | None,
        store: Store | None = None,
        *,
        cache_ttl: float = 60.0,
        cache_size: int = 10_000,
        negative_ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._master = master_key.encode() if master_key else None
        self._store = store
        self._ttl = cache_ttl
        self._negative_ttl = negative_ttl
        self._size = cache_size
        self._clock = clock
        self._now = now
        self._cache: OrderedDict[str, _Entry] = OrderedDict()

    async def authenticate(self, credential: str | None) -> Principal:
        if self._master is None:
            return OPEN
        if not credential:
            raise AuthenticationFailed(
                "Authentication Error: no API key passed in. Send it as 'Authorization: Bearer <key>'."
            )
        if hmac.compare_digest(credential.encode(), self._master):
            return MASTER
        if self._store is None:
            raise AuthenticationFailed("Authentication Error: invalid API key.")
        token = hash_key(credential)
        entry = self._cache.get(token)
        if entry is None or entry.cached_until <= self._clock():
            entry = await self._load(token)
            self._remember(token, entry)
        if entry.refusal is not None or entry.principal is None:
            raise AuthenticationFailed(f"Authentication Error: {entry.refusal or 'invalid API key.'}")
        if entry.expires is not None and entry.expires <= self._now():
            raise AuthenticationFailed(
                f"Authentication Error: this key expired at {entry.expires.isoformat()}."
            )
        return entry.principal

    def invalidate(self, key_hash: str) -> None:
        self._cache.pop(key_hash, None)

    def invalidate_all(self) -> None:
        self._cache.clear()

    def _remember(self, token: str, entry: _Entry) -> None:
        self._cache[token] = entry
        self._cache.move_to_end(token)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)

    async def _load(self, token: str) -> _Entry:
        assert self._store is not None
        async with self._store.transaction() as tx:
            key = await tx.keys.get(token)
            if key is None:
                return self._refused("invalid API key.", negative=True)
            user = await tx.users.get(key.user_id) if key.user_id else None
            team = await tx.teams.get(key.team_id) if key.team_id else None
            org_id = key.org_id or (team.org_id if team else None) or (user.org_id if user else None)
            org = await tx.orgs.get(org_id) if org_id else None
        if key.policy.blocked:
            return self._refused("this key is blocked.")
        for kind, record in (("user", user), ("team", team), ("organization", org)):
            if record is not None and record.policy.blocked:
                return self._refused(f"this key's {kind} '{record.id}' is blocked.")
        entities = [entity_of("key", key.token, key.policy, key.key_alias)]
        if user is not None:
            entities.append(entity_of("user", user.id, user.policy, user.alias))
        if team is not None:
            entities.append(entity_of("team", team.id, team.policy, team.alias))
        if org is not None:
            entities.append(entity_of("org", org.id, org.policy, org.alias))
        principal = Principal(
            kind="key", entities=tuple(entities), key_hash=key.token, key_alias=key.key_alias,
            user_id=key.user_id, team_id=key.team_id, org_id=org_id, role=_role(user.role if user else None),
            metadata=dict(key.policy.metadata), tags=key.policy.tags,
        )
        return _Entry(principal, None, key.expires, self._clock() + self._ttl)

    def _refused(self, reason: str, negative: bool = False) -> _Entry:
        ttl = self._negative_ttl if negative else self._ttl
        return _Entry(None, reason, None, self._clock() + ttl)


def _role(value: str | None) -> Role:
    if value == "proxy_admin":
        return "proxy_admin"
    if value == "proxy_admin_viewer":
        return "proxy_admin_viewer"
    if value == "internal_user_viewer":
        return "internal_user_viewer"
    return "internal_user"


__all__ = ["KeyAuthenticator", "entity_of", "hash_key"]
