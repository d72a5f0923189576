"""Master-key and virtual-key authentication.

``KeyAuthenticator`` turns a credential (found by ``bearer.credential_from_headers``) into a
``Principal``. The master key is compared in constant time. Virtual keys are looked
up by their SHA-256 — the key with its user, team and organisation in one indexed read
(``store.key_chain``) — and the resulting principals cached (bounded, with a TTL), so the hot path
does not touch the database; admin writes call ``invalidate``/``invalidate_all``. Across replicas,
the Redis pub/sub listener (``auth/invalidation.py``) calls the same two methods when another replica
publishes a change — that is the only seam cross-replica invalidation needs.

Memory: a cached principal holds its key's own entity, a tuple of entities and a small metadata
dict; its user, team and organisation entities are shared with every other cached key of theirs
(``chain.EntityCache``). ``cache_size`` bounds the number of principals (LRU).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tollgate.auth.chain import EntityCache, blocked_parent, entity_of
from tollgate.auth.principal import MASTER, OPEN, Principal, Role
from tollgate.errors import AuthenticationFailed
from tollgate.store import Store


def hash_key(key: str) -> str:
    """The stored form of a virtual key: its SHA-256, hex (LiteLLM's token hash)."""
    return hashlib.sha256(key.encode()).hexdigest()


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
        self._entities = EntityCache()

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
        self._entities.clear()

    @property
    def cached(self) -> int:
        """Principals (and refusals) in the cache."""
        return len(self._cache)

    def _remember(self, token: str, entry: _Entry) -> None:
        self._cache[token] = entry
        self._cache.move_to_end(token)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)

    async def _load(self, token: str) -> _Entry:
        assert self._store is not None
        chain = await self._store.key_chain(token)
        if chain is None:
            return self._refused("invalid API key.", negative=True)
        key, user, team, org = chain.key, chain.user, chain.team, chain.org
        if key.policy.blocked:
            return self._refused("this key is blocked.")
        blocked = blocked_parent(user, team, org)
        if blocked is not None:
            return self._refused(f"this key's {blocked[0]} '{blocked[1]}' is blocked.")
        own = entity_of("key", key.token, key.policy, key.key_alias)
        org_id = key.org_id or (team.org_id if team else None) or (user.org_id if user else None)
        principal = Principal(
            kind="key", entities=(own, *self._entities.chain(user, team, org)), key_hash=key.token,
            key_alias=key.key_alias, user_id=key.user_id, team_id=key.team_id, org_id=org_id,
            role=_role(user.role if user else None), metadata=dict(key.policy.metadata), tags=key.policy.tags,
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


__all__ = ["KeyAuthenticator", "hash_key"]
