"""KeyAuthenticator through a database outage: cached principals are served for a bounded time,
other keys get StoreUnavailable (503), the database is not hammered, and it all recovers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tollgate.auth.keys import RECHECK_EVERY, KeyAuthenticator, hash_key
from tollgate.errors import StoreUnavailable
from tollgate.store import KeyChain, StoreTx
from tollgate.store.memory import MemoryStore
from tollgate.store.records import VirtualKey


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FlakyStore(MemoryStore):
    """A memory store that can be taken down (raises) or stalled (never answers)."""

    def __init__(self) -> None:
        super().__init__()
        self.state = "up"
        self.lookups = 0

    async def _reach(self) -> None:
        self.lookups += 1
        if self.state == "down":
            raise StoreUnavailable("the database is unavailable; retry shortly", detail="connection refused")
        if self.state == "stalled":
            await asyncio.Event().wait()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTx]:
        await self._reach()
        async with super().transaction() as tx:
            yield tx

    async def key_chain(self, token: str) -> KeyChain | None:  # the authenticator's one read
        await self._reach()
        return await super().key_chain(token)


Setup = tuple[FlakyStore, KeyAuthenticator, Clock]


@pytest.fixture
async def setup() -> Setup:
    store = FlakyStore()
    async with store.transaction() as tx:
        for key in ("sk-seen", "sk-unseen"):
            await tx.keys.insert(VirtualKey(hash_key(key), "sk-...", None, None, None))
    clock = Clock()
    auth = KeyAuthenticator("sk-master", store, cache_ttl=60, stale_for=600, load_timeout=0.05, clock=clock)
    await auth.authenticate("sk-seen")
    return store, auth, clock


@pytest.mark.parametrize("state", ["down", "stalled"])
async def test_a_seen_key_is_served_through_an_outage_within_the_bound(setup: Setup, state: str) -> None:
    store, auth, clock = setup
    store.state = state
    clock.now += 61  # the cache entry is due for a refresh
    principal = await auth.authenticate("sk-seen")
    assert principal.key_hash == hash_key("sk-seen")
    with pytest.raises(StoreUnavailable) as info:
        await auth.authenticate("sk-unseen")
    assert info.value.status == 503
    assert info.value.retry_after is not None and info.value.retry_after > 0
    assert "connection refused" in info.value.detail or "timed out" in info.value.detail
    clock.now += 600  # now 661 s since the database last confirmed the key
    with pytest.raises(StoreUnavailable):
        await auth.authenticate("sk-seen")


async def test_after_a_failed_lookup_the_database_is_left_alone_for_a_while(setup: Setup) -> None:
    store, auth, clock = setup
    store.state = "down"
    clock.now += 61
    before = store.lookups
    await auth.authenticate("sk-seen")
    for _ in range(5):
        await auth.authenticate("sk-seen")
        with pytest.raises(StoreUnavailable):
            await auth.authenticate("sk-unseen")
    assert store.lookups == before + 1
    clock.now += RECHECK_EVERY
    await auth.authenticate("sk-seen")
    assert store.lookups == before + 2


async def test_everything_recovers_with_the_database(setup: Setup) -> None:
    store, auth, clock = setup
    store.state = "down"
    clock.now += 61
    with pytest.raises(StoreUnavailable):
        await auth.authenticate("sk-unseen")
    store.state = "up"
    clock.now += RECHECK_EVERY
    assert (await auth.authenticate("sk-unseen")).key_hash == hash_key("sk-unseen")
