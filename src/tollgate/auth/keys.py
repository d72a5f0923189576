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

import asyncio
import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from tollgate.auth.chain import EntityCache, blocked_parent, entity_of
from tollgate.auth.principal import MASTER, OPEN, Principal, Role
from tollgate.errors import AuthenticationFailed, StoreUnavailable
from tollgate.store import Store

DEFAULT_CACHE_TTL = 60.0  # seconds a principal is served from memory (user_api_key_cache_ttl)
# While the database cannot be reached, a principal loaded at most this long ago is still served
# (it cannot have been changed meanwhile: every admin write needs the database too).
DEFAULT_STALE_FOR = 600.0
DEFAULT_LOAD_TIMEOUT = 5.0  # seconds a key lookup may take before the database counts as unreachable
STALE_WARNING_EVERY = 60.0  # seconds between the log lines saying cached keys are being served
RECHECK_EVERY = 2.0  # after a failed lookup, seconds before the database is tried again

log = logging.getLogger("tollgate.auth")


def hash_key(key: str) -> str:
    """The stored form of a virtual key: its SHA-256, hex (LiteLLM's token hash)."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal | None
    refusal: str | None  # why the key is refused (unknown, blocked, …), when it is
    expires: datetime | None
    cached_until: float
    loaded_at: float  # when the database last confirmed it (bounds serving it through an outage)


class KeyAuthenticator:
    """``authenticate(credential) -> Principal``: master key, virtual key, or OPEN without a master key.

    ``clock`` (monotonic seconds) runs the cache; ``now`` (UTC) judges key expiry. When the
    database cannot be reached (``StoreUnavailable``, or a lookup slower than ``load_timeout``),
    a cached principal loaded less than ``stale_for`` seconds ago is served; any other key gets
    ``StoreUnavailable`` (503 with retry-after), never a 500 and never an unchecked admission.
    """

    def __init__(
        self,
        master_key: str | None,
        store: Store | None = None,
        *,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        cache_size: int = 10_000,
        negative_ttl: float = 5.0,
        stale_for: float = DEFAULT_STALE_FOR,
        load_timeout: float = DEFAULT_LOAD_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if master_key is not None and not master_key.strip():
            # An empty key would open the gateway; only "no master key" (None) may (config refuses "").
            raise ValueError("master_key is empty: pass None for an open gateway")
        self._master = master_key.encode() if master_key is not None else None
        self._store = store
        self._ttl = cache_ttl
        self._negative_ttl = negative_ttl
        self._stale_for = stale_for
        self._load_timeout = load_timeout
        self._size = cache_size
        self._clock = clock
        self._now = now
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._last_stale_warning = -STALE_WARNING_EVERY
        self._down_until = 0.0  # until then lookups are not tried (one just failed)
        self._down_reason = ""
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
            entry = await self._refresh(token, entry)
        if entry.refusal is not None or entry.principal is None:
            raise AuthenticationFailed(f"Authentication Error: {entry.refusal or 'invalid API key.'}")
        if entry.expires is not None and entry.expires <= self._now():
            raise AuthenticationFailed(
                f"Authentication Error: this key expired at {entry.expires.isoformat()}."
            )
        return entry.principal

    async def _refresh(self, token: str, cached: _Entry | None) -> _Entry:
        if self._clock() < self._down_until:  # a lookup just failed: do not make this one wait too
            return self._through_outage(cached, self._down_reason)
        try:
            async with asyncio.timeout(self._load_timeout):
                entry = await self._load(token)
        except (StoreUnavailable, TimeoutError) as exc:
            self._down_until = self._clock() + RECHECK_EVERY
            self._down_reason = exc.detail if isinstance(exc, StoreUnavailable) else "key lookup timed out"
            return self._through_outage(cached, self._down_reason)
        self._down_until = 0.0
        self._remember(token, entry)
        return entry

    def _through_outage(self, cached: _Entry | None, reason: str) -> _Entry:
        """The cached entry while it is fresh enough, else ``StoreUnavailable``."""
        now = self._clock()
        if cached is not None and now - cached.loaded_at <= self._stale_for:
            if now - self._last_stale_warning >= STALE_WARNING_EVERY:
                self._last_stale_warning = now
                log.warning(
                    "database unreachable (%s): serving cached keys up to %.0fs old", reason, self._stale_for
                )
            return cached
        raise StoreUnavailable(
            "Authentication is unavailable: the key store cannot be reached; retry shortly.", detail=reason
        )

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
        now = self._clock()
        return _Entry(principal, None, key.expires, now + self._ttl, now)

    def _refused(self, reason: str, negative: bool = False) -> _Entry:
        ttl = self._negative_ttl if negative else self._ttl
        now = self._clock()
        return _Entry(None, reason, None, now + ttl, now)


def _role(value: str | None) -> Role:
    if value == "proxy_admin":
        return "proxy_admin"
    if value == "proxy_admin_viewer":
        return "proxy_admin_viewer"
    if value == "internal_user_viewer":
        return "internal_user_viewer"
    return "internal_user"


__all__ = ["KeyAuthenticator", "hash_key"]
