"""Replica leases on real Redis, and ``ResilientCounterStore`` through outages: fail modes,
settlements retried, lost admission replies released, stale per-process totals forgotten."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.services import missing
from tests.store.test_counters import REDIS_URL, T0, drop_prefix, redis_reachable
from tollgate.store.counters import (
    AdmissionResult,
    BudgetCheck,
    CounterAdmission,
    CounterStoreUnavailable,
    Reservation,
    Settlement,
    SlotCheck,
    SpendAdd,
    WindowCheck,
)
from tollgate.store.lease_counters import MIN_MISSES
from tollgate.store.leased_counters import LeasedCounterStore
from tollgate.store.memory_counters import MemoryCounterStore
from tollgate.store.redis_counters import RedisCounterStore
from tollgate.store.redis_wire import RedisWire
from tollgate.store.resilient_counters import ResilientCounterStore


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    if not await redis_reachable():
        missing("Redis is not reachable at 127.0.0.1:6379")
    name = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    yield name
    await drop_prefix(name)


def slot(member: str, now: float = T0, limit: int = 1) -> CounterAdmission:
    return CounterAdmission(
        now, member, slots=(SlotCheck("p:key", limit),), reservations=(Reservation("r:key", 7),),
        budgets=(BudgetCheck("s:key", "r:key", 100, seed=0),),
    )


async def test_a_dead_replicas_slots_come_back_after_its_lease(prefix: str) -> None:
    dead = RedisCounterStore.from_url(REDIS_URL, prefix=prefix, timeout=5.0, lease=10.0)
    alive = RedisCounterStore.from_url(REDIS_URL, prefix=prefix, timeout=5.0, lease=10.0)
    try:
        assert (await dead.admit(slot("crashed"))).admitted
        assert not (await alive.admit(slot("blocked"))).admitted
        assert await alive.heartbeat(T0 + 9.9) == 0  # the owner's lease has not lapsed yet
        assert await alive.heartbeat(T0 + 10.1) == 1
        taken = await alive.admit(slot("mine", T0 + 11))
        assert taken.admitted
        # The dead replica wakes up and settles late: its spend counts, nothing is given back twice.
        totals = await dead.settle(Settlement(T0 + 12, "crashed", spends=(SpendAdd("s:key", 5, None),)))
        assert totals == (5,)
        refused = await alive.admit(slot("another", T0 + 12))
        assert (refused.failed, refused.current) == ("slot", 1)
        # ... and its reservation of 7 was given back exactly once: only "mine" holds one.
        budget = await alive.admit(
            CounterAdmission(T0 + 12, "peek", budgets=(BudgetCheck("s:key", "r:key", 12, seed=0),))
        )
        assert (budget.failed, budget.current, budget.reserved) == ("budget", 5, 7)
    finally:
        await dead.close()
        await alive.close()


async def test_admissions_renew_the_lease(prefix: str) -> None:
    busy = RedisCounterStore.from_url(REDIS_URL, prefix=prefix, timeout=5.0, lease=10.0)
    other = RedisCounterStore.from_url(REDIS_URL, prefix=prefix, timeout=5.0, lease=10.0)
    try:
        assert (await busy.admit(slot("held", T0, limit=5))).admitted
        assert (await busy.admit(slot("later", T0 + 8, limit=5))).admitted
        assert await other.heartbeat(T0 + 12) == 0  # renewed at T0 + 8: alive until T0 + 18
        assert await other.heartbeat(T0 + 18.5) == 2
    finally:
        await busy.close()
        await other.close()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Flaky(RedisCounterStore):
    """A real Redis store that can be switched off, and can lose replies after the fact."""

    def __init__(self, prefix: str) -> None:
        super().__init__(RedisWire(REDIS_URL, timeout=5.0), prefix=prefix)
        self.down = False
        self.lose_reply = False

    async def admit(self, admission: CounterAdmission) -> AdmissionResult:
        if self.down:
            raise CounterStoreUnavailable("down")
        result = await super().admit(admission)
        if self.lose_reply:
            raise CounterStoreUnavailable("reply lost")
        return result

    async def settle(self, settlement: Settlement) -> tuple[int, ...]:
        if self.down:
            raise CounterStoreUnavailable("down")
        return await super().settle(settlement)

    async def heartbeat(self, now: float) -> int:
        if self.down:
            raise CounterStoreUnavailable("down")
        return await super().heartbeat(now)

    async def ping(self) -> None:
        if self.down:
            raise CounterStoreUnavailable("down")
        await super().ping()


async def test_settlements_made_during_an_outage_reach_redis_afterwards(prefix: str) -> None:
    flaky = Flaky(prefix)
    store = ResilientCounterStore(flaky, MemoryCounterStore(), clock=Clock(), wall=lambda: T0)
    first = await store.admit(slot("a", limit=2))
    assert first.via == "redis"
    assert (await store.admit(slot("b", limit=2))).via == "redis"
    flaky.down = True
    assert await store.settle(Settlement(T0, "a", spends=(SpendAdd("s:key", 3, None),), via="redis")) == ()
    assert store.pending == 1
    await store.tick()  # still down: kept
    assert store.pending == 1
    flaky.down = False
    await store.tick()
    assert store.pending == 0
    # The slot is free again and the spend arrived.
    assert (await flaky.admit(slot("c", limit=2))).admitted
    assert await flaky.peek(["s:key"]) == (3,)
    await store.close()


async def test_an_admission_whose_reply_was_lost_is_released(prefix: str) -> None:
    flaky = Flaky(prefix)
    warnings: list[str] = []
    store = ResilientCounterStore(flaky, MemoryCounterStore(), clock=Clock(), wall=lambda: T0,
                                  warn=warnings.append)
    flaky.lose_reply = True
    result = await store.admit(slot("lost"))
    assert (result.admitted, result.via) == (True, "memory")  # served by the fallback
    flaky.lose_reply = False
    assert not (await flaky.admit(slot("probe"))).admitted  # Redis did take the slot
    await store.tick()
    assert (await flaky.admit(slot("probe"))).admitted
    assert any("UNAVAILABLE" in w for w in warnings)
    await store.close()


async def test_fallback_totals_are_seeded_and_forgotten_on_recovery(prefix: str) -> None:
    flaky = Flaky(prefix)
    memory = MemoryCounterStore()
    clock = Clock()
    store = ResilientCounterStore(flaky, memory, clock=clock, wall=lambda: T0, retry_interval=5.0)
    flaky.down = True
    budget = (BudgetCheck("s:spent", "r:k", 100),)
    missing = await store.admit(CounterAdmission(T0, "a", budgets=budget))
    # The fallback does not guess a budget total either: it asks for the spend of record.
    assert (missing.failed, missing.missing, missing.via) == ("missing", (0,), "memory")
    seeded = (BudgetCheck("s:spent", "r:k", 100, seed=100),)
    refused = await store.admit(CounterAdmission(T0, "b", budgets=seeded))
    assert (refused.failed, refused.current) == ("budget", 100)
    flaky.down = False
    clock.now = 5.0
    await store.tick()
    assert await memory.peek(["s:spent"]) == (None,)  # stale once Redis is back
    await store.close()


async def test_fail_open_checks_budgets_but_no_rate_limit(prefix: str) -> None:
    flaky = Flaky(prefix)
    flaky.down = True
    store = ResilientCounterStore(flaky, MemoryCounterStore(), "fail_open", clock=Clock())
    limited = CounterAdmission(T0, "x", windows=(WindowCheck("w:k", 1, 1),), slots=(SlotCheck("p:k", 1),))
    results = [await store.admit(limited) for _ in range(3)]
    assert all(r.admitted and r.via == "open" for r in results)
    spent = (BudgetCheck("s:k", "r:k", 10, seed=10),)
    refused = await store.admit(CounterAdmission(T0, "y", budgets=spent, windows=limited.windows))
    assert (refused.admitted, refused.failed) == (False, "budget")
    ready, detail = await store.health_check()
    assert ready and "fail_open" in detail
    await store.close()


async def test_fail_closed_refuses_and_is_unready(prefix: str) -> None:
    flaky = Flaky(prefix)
    flaky.down = True
    store = ResilientCounterStore(flaky, MemoryCounterStore(), "fail_closed", clock=Clock())
    with pytest.raises(CounterStoreUnavailable):
        await store.admit(CounterAdmission(T0, "x", windows=(WindowCheck("w:k", 1, 1),)))
    assert not store.healthy
    await store.close()


async def test_fallback_warns_once_and_recovers_after_the_retry_interval(prefix: str) -> None:
    flaky = Flaky(prefix)
    clock = Clock()
    warnings: list[str] = []
    store = ResilientCounterStore(
        flaky, MemoryCounterStore(), "fallback", clock=clock, retry_interval=5.0, warn=warnings.append
    )
    flaky.down = True
    results = [await store.admit(CounterAdmission(T0, f"m{i}", windows=(WindowCheck("w:r", 2, 1),)))
               for i in range(3)]
    assert [r.admitted for r in results] == [True, True, False]
    assert all(r.via == "memory" for r in results)
    assert len(warnings) == 1 and "per process" in warnings[0]
    flaky.down = False
    clock.now = 4.0
    assert (await store.admit(CounterAdmission(T0, "n", windows=(WindowCheck("w:r", 2, 1),)))).via == "memory"
    clock.now = 5.0
    assert (await store.admit(CounterAdmission(T0, "o", windows=(WindowCheck("w:r", 2, 1),)))).via == "redis"
    assert store.healthy
    assert "recovered" in warnings[-1]
    await store.close()


async def test_closed_port_raises_store_unavailable() -> None:
    dead = RedisCounterStore.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(CounterStoreUnavailable):
        await dead.admit(CounterAdmission(T0, "m", windows=(WindowCheck("w", 1, 1),)))
    await dead.close()


async def test_a_settlement_from_a_quota_lease_during_an_outage_does_not_end_it(prefix: str) -> None:
    flaky = Flaky(prefix)
    leased = LeasedCounterStore(flaky, interval=3600.0, clock=lambda: T0)
    warnings: list[str] = []
    store = ResilientCounterStore(leased, MemoryCounterStore(), clock=Clock(), wall=lambda: T0,
                                  warn=warnings.append)

    def busy(member: str) -> CounterAdmission:
        return CounterAdmission(T0, member, windows=(WindowCheck("w:busy", 10**9, 1),))

    for i in range(MIN_MISSES):
        assert (await store.admit(busy(f"m{i}"))).via == "redis"
    assert await leased.exchange()  # the busy window is leased now
    local = await store.admit(busy("local"))
    assert local.via == "lease"
    flaky.down = True
    fallback = await store.admit(CounterAdmission(T0, "other", windows=(WindowCheck("w:quiet", 5, 1),)))
    assert fallback.via == "memory" and not store.healthy
    await store.settle(Settlement(T0, "local", via="lease"))
    assert not store.healthy  # still in the outage: the fallback's counters are kept
    assert not any("recovered" in w for w in warnings)
    flaky.down = False
    await store.close()
