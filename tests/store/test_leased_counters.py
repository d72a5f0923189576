"""Quota leases against the machine's Redis: two ``LeasedCounterStore`` replicas sharing one prefix.

Leases change where requests are counted, never how much: every limit holds across the replicas,
what they admit comes within the documented share of it, and once they stop Redis holds exactly
what their requests used. Time is a fake clock driven by the test, and exchanges are sent by the
test (the stores' own loop waits an hour), so each run interleaves the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.e2e.tcp_proxy import tcp_proxy
from tests.services import async_redis_prefix
from tollgate.store.counters import (
    AdmissionResult,
    BudgetCheck,
    CounterAdmission,
    CounterStoreUnavailable,
    Reservation,
    Settlement,
    SlotCheck,
    SpendAdd,
    WindowAdjust,
    WindowCheck,
)
from tollgate.store.lease_counters import LEASE_SHARE, MIN_MISSES, Exchange
from tollgate.store.leased_counters import LeasedCounterStore
from tollgate.store.redis_counters import RedisCounterStore

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = 1_700_000_000.0
SPEND, HELD = "s:key:k:day", "held:key:k"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class CountedRedis(RedisCounterStore):
    """Counts the admissions that reached Redis one by one."""

    admits = 0

    async def admit(self, admission: CounterAdmission) -> AdmissionResult:
        self.admits += 1
        return await super().admit(admission)


class Pair:
    def __init__(self, prefix: str, clock: Clock) -> None:
        self.prefix, self.clock = prefix, clock
        self.redis = [CountedRedis.from_url(REDIS_URL, prefix=prefix, timeout=5.0) for _ in range(2)]
        self.stores = [LeasedCounterStore(r, interval=3600.0, clock=clock) for r in self.redis]
        self.client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)

    def key(self, name: str) -> str:
        return "{" + self.prefix + "}:" + name

    async def window_total(self, name: str) -> int:
        return int(await self.client.hget(self.key("v2:" + name), "_t") or 0)

    async def value(self, name: str) -> int:
        return int(await self.client.get(self.key(name)) or 0)

    async def exchange(self) -> None:
        for store in self.stores:
            assert await store.exchange()

    async def close(self) -> None:
        """Stop both replicas (each gives its leases back), once."""
        stores, self.stores = self.stores, []
        for store in stores:
            await store.close()


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    async with async_redis_prefix("tollgate-lease") as prefix:
        made = Pair(prefix, Clock())
        await made.client.set(made.key(SPEND), 0)
        try:
            yield made
        finally:
            await made.close()
            await made.client.aclose()


def chain(now: float, *, rpm: int = 10**9, parallel: int = 10**6, budget: int = 10**15,
          cost: int = 1000) -> CounterAdmission:
    return CounterAdmission(
        now, uuid.uuid4().hex,
        budgets=(BudgetCheck(SPEND, HELD, budget),),
        windows=(WindowCheck("w:rpm", rpm, 1), WindowCheck("w:tpm", 10**12, 30)),
        slots=(SlotCheck("slot:k", parallel),),
        reservations=(Reservation(HELD, cost),),
        cost=cost,
    )


def settlement(now: float, admission: CounterAdmission, spend: int = 700) -> Settlement:
    return Settlement(
        now, admission.member, windows=(WindowAdjust("w:tpm", int(admission.now), -5),),
        spends=(SpendAdd(SPEND, spend),), via="redis",
    )


async def test_two_replicas_leave_redis_with_exactly_what_their_requests_used(pair: Pair) -> None:
    n = 3000
    for i in range(n):
        pair.clock.now = T0 + i * 0.001
        store = pair.stores[i % 2]
        admission = chain(pair.clock.now)
        assert (await store.admit(admission)).admitted
        await store.settle(settlement(pair.clock.now, admission))
        if i % 40 == 39:
            await pair.exchange()
    # Most requests never went to Redis one by one.
    assert sum(r.admits for r in pair.redis) < n // 5
    # While leases are held Redis counts at least what was used, never less.
    assert await pair.window_total("w:rpm") >= n
    await pair.close()
    assert await pair.window_total("w:rpm") == n
    assert await pair.window_total("w:tpm") == n * 25
    assert await pair.value(SPEND) == n * 700
    assert await pair.value("slot:k") == 0 and await pair.value(HELD) == 0
    for redis in pair.redis:
        assert not await pair.client.hexists(pair.key("i:" + redis.owner), "lease")
    assert not await pair.client.exists(pair.key("lease-seq"))  # stopped replicas leave none


async def test_an_rpm_limit_holds_across_leasing_replicas_and_admits_nearly_all_of_it(pair: Pair) -> None:
    # Leases are taken only far from a limit (a lease is at most 1/LEASE_SHARE of the headroom):
    # requests at 160/s against 4,000 rpm fill the window in 25 s, leased at first, then one by one.
    limit, requests = 4000, 8000
    admitted = 0
    for i in range(requests):
        pair.clock.now = T0 + i * 0.00625  # all within one window: 50 s
        store = pair.stores[i % 2]
        admission = chain(pair.clock.now, rpm=limit)
        if (await store.admit(admission)).admitted:
            admitted += 1
            await store.settle(Settlement(pair.clock.now, admission.member, via="redis"))
        if i % 8 == 7:
            assert await pair.window_total("w:rpm") >= admitted  # Redis never counts less
            await pair.exchange()
    assert sum(r.admits for r in pair.redis) < requests - limit // 10  # leases served some
    assert admitted <= limit
    # Refused early at most by the leases outstanding when the limit was reached: each takes at
    # most 1/LEASE_SHARE of the headroom, one per replica and second (this one and the next).
    assert admitted >= limit - 4 * limit // LEASE_SHARE
    await pair.close()
    assert await pair.window_total("w:rpm") == admitted


async def test_max_parallel_holds_across_leasing_replicas(pair: Pair) -> None:
    parallel = 10_000
    held: list[tuple[LeasedCounterStore, CounterAdmission]] = []
    for round_ in range(20):  # 600 more requests in flight each round, none settling
        for i in range(600):
            pair.clock.now = T0 + round_ * 0.02 + i * 0.00001
            store = pair.stores[i % 2]
            admission = chain(pair.clock.now, parallel=parallel)
            if (await store.admit(admission)).admitted:
                held.append((store, admission))
        assert len(held) <= parallel
        assert await pair.value("slot:k") >= len(held)  # Redis never counts less
        await pair.exchange()
    assert sum(r.admits for r in pair.redis) < 20 * 600 - parallel // 10  # leases served some
    assert len(held) >= parallel - 4 * parallel // LEASE_SHARE
    for store, admission in held:
        await store.settle(settlement(pair.clock.now, admission))
    await pair.close()
    assert await pair.value("slot:k") == 0


async def test_a_budget_holds_across_leasing_replicas(pair: Pair) -> None:
    cost = 1000
    budget = 4000 * cost
    spent = 0
    for i in range(6000):
        pair.clock.now = T0 + i * 0.0002
        store = pair.stores[i % 2]
        admission = chain(pair.clock.now, budget=budget, cost=cost)
        if (await store.admit(admission)).admitted:
            await store.settle(settlement(pair.clock.now, admission, spend=cost))
            spent += cost
        if i % 10 == 9:
            await pair.exchange()
    assert sum(r.admits for r in pair.redis) < 6000 // 2
    # LiteLLM's rule: admitted while spend + in flight < budget, so at most one request over it.
    assert spent <= budget + cost
    assert spent >= budget - 4 * budget // LEASE_SHARE
    await pair.close()
    assert await pair.value(SPEND) == spent
    assert await pair.value(HELD) == 0


async def test_a_dead_replicas_leases_are_given_back_by_the_sweep(pair: Pair) -> None:
    dead, alive = pair.stores
    for i in range(40):
        pair.clock.now = T0 + i * 0.001
        admission = chain(pair.clock.now)
        assert (await dead.admit(admission)).admitted
        await dead.settle(settlement(pair.clock.now, admission))
    await dead.exchange()  # flush and lease
    assert await pair.value("slot:k") > 0 and await pair.value(HELD) > 0
    # The dead replica never closes; the live one's heartbeat after its lease lapsed sweeps it.
    swept = await alive.heartbeat(T0 + pair.redis[0].lease + 60)
    assert swept >= 1
    assert await pair.value("slot:k") == 0 and await pair.value(HELD) == 0
    assert await pair.value(SPEND) == 40 * 700  # what was flushed stays spent
    # Back from the dead, its next exchange learns its leases are gone and holds none.
    await dead.exchange()
    slots = dead.book.slots.get("slot:k")
    assert await pair.value("slot:k") >= (slots.granted if slots else 0)


async def test_an_exchange_sent_twice_is_applied_once(pair: Pair) -> None:
    redis = pair.redis[0]
    exchange = Exchange(T0, seq=7, spends=[(SPEND, 500)], corrections=[("w:tpm", int(T0), 9)])
    first = await redis.exchange(exchange, LEASE_SHARE)
    again = await redis.exchange(exchange, LEASE_SHARE)
    assert first == [0] and again == [2]
    assert await pair.value(SPEND) == 500
    assert await pair.window_total("w:tpm") == 9


async def test_an_exchange_redis_did_not_take_is_sent_again_once_it_is_back() -> None:
    clock = Clock()
    async with async_redis_prefix("tollgate-lease") as prefix:
        with tcp_proxy("127.0.0.1", 6379) as proxy:
            url = f"redis://127.0.0.1:{proxy.port}/0"
            redis = RedisCounterStore.from_url(url, prefix=prefix, timeout=0.3)
            store = LeasedCounterStore(redis, interval=3600.0, clock=clock)
            client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
            await client.set("{" + prefix + "}:" + SPEND, 0)
            admitted = 0
            try:
                for i in range(410):  # the last 10 settle after the last exchange
                    clock.now = T0 + i * 0.001
                    admission = chain(clock.now)
                    assert (await store.admit(admission)).admitted
                    await store.settle(settlement(clock.now, admission))
                    admitted += 1
                    if i % 40 == 39 and i < 400:
                        assert await store.exchange()
                proxy.cut()  # Redis is gone: what was settled since the last exchange waits
                assert not await store.exchange()
                clock.now += 0.001
                with pytest.raises(CounterStoreUnavailable):  # no lease is used while cut off
                    await store.admit(chain(clock.now))
                proxy.resume()
                assert await store.exchange()
                await store.close()
                rpm = int(await client.hget("{" + prefix + "}:v2:w:rpm", "_t") or 0)
                assert rpm == admitted
                assert int(await client.get("{" + prefix + "}:" + SPEND) or 0) == admitted * 700
                assert int(await client.get("{" + prefix + "}:slot:k") or 0) == 0
            finally:
                await store.close()
                await client.aclose()


async def test_a_replica_that_went_quiet_and_stopped_leaves_nothing_behind(pair: Pair) -> None:
    store = pair.stores[0]
    for i in range(2 * MIN_MISSES):
        pair.clock.now = T0 + i * 0.001
        admission = chain(pair.clock.now)
        assert (await store.admit(admission)).admitted
        await store.settle(settlement(pair.clock.now, admission))
    assert await store.exchange()  # leases taken
    pair.clock.now = T0 + 30  # quiet: everything goes back and the counters are forgotten
    assert await store.exchange()
    assert not store.book.busy
    await pair.close()  # the final exchange has nothing to send but its sequence number to drop
    assert not await pair.client.exists(pair.key("lease-seq"))
    assert await pair.value("slot:k") == 0 and await pair.value(HELD) == 0
