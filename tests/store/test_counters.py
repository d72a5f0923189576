"""One counter suite, run against the in-memory store and Redis (127.0.0.1:6379, fresh prefix)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from tests.services import missing
from tollgate.store.counters import (
    AdmissionResult,
    BudgetCheck,
    CounterAdmission,
    CounterStore,
    CounterStoreUnavailable,
    MemoryCounterStore,
    Reservation,
    Settlement,
    SlotCheck,
    SpendAdd,
    WindowAdjust,
    WindowCheck,
    from_nano,
    to_nano,
)
from tollgate.store.redis_counters import RedisCounterStore, ResilientCounterStore

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = 1_700_000_000.0  # a whole second, so bucket arithmetic in the tests is easy to follow


async def _redis_reachable() -> bool:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        await client.ping()
        return True
    except Exception:
        return False
    finally:
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CounterStore]:
    if request.param == "memory":
        yield MemoryCounterStore()
        return
    if not await _redis_reachable():
        missing("Redis is not reachable at 127.0.0.1:6379")
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    redis_store = RedisCounterStore.from_url(REDIS_URL, prefix=prefix, timeout=5.0)
    yield redis_store
    await redis_store.close()
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match="{" + prefix + "}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def _window(
    now: float, key: str = "w:rpm", limit: int = 3, amount: int = 1, member: str = "m"
) -> CounterAdmission:
    return CounterAdmission(now, member, windows=(WindowCheck(key, limit, amount),))


async def test_window_refuses_exactly_at_limit_and_frees_after_the_window(store: CounterStore) -> None:
    for i in range(3):
        result = await store.admit(_window(T0 + i))
        assert result.admitted
        assert result.used == (i,)
    refused = await store.admit(_window(T0 + 10))
    assert (refused.admitted, refused.failed, refused.index, refused.current) == (False, "window", 0, 3)
    # The first event (second T0) leaves the window at T0 + 61.
    assert refused.retry_after == pytest.approx(51.0)
    assert not (await store.admit(_window(T0 + 60.9))).admitted
    assert (await store.admit(_window(T0 + 61))).admitted


async def test_no_double_burst_at_a_minute_boundary(store: CounterStore) -> None:
    for _ in range(3):
        assert (await store.admit(_window(T0 + 59.5))).admitted
    # A fixed per-minute bucket would reset here; the sliding window does not.
    for moment in (T0 + 60.0, T0 + 60.5, T0 + 100.0, T0 + 119.9):
        assert not (await store.admit(_window(moment))).admitted
    assert (await store.admit(_window(T0 + 120.0))).admitted


async def test_token_amounts_and_retry_after_counts_enough_buckets(store: CounterStore) -> None:
    assert (await store.admit(_window(T0, "w:tpm", 100, 40))).admitted
    assert (await store.admit(_window(T0 + 5, "w:tpm", 100, 40))).admitted
    refused = await store.admit(_window(T0 + 10, "w:tpm", 100, 70))
    # 80 used + 70 > 100: 50 must leave, i.e. both buckets; the second leaves at T0 + 66.
    assert (refused.admitted, refused.current) == (False, 80)
    assert refused.retry_after == pytest.approx(56.0)
    too_big = await store.admit(_window(T0 + 10, "w:tpm", 100, 101))
    assert not too_big.admitted
    assert too_big.retry_after == 60.0


async def test_admission_is_all_or_nothing(store: CounterStore) -> None:
    both = CounterAdmission(T0, "a", windows=(WindowCheck("w:one", 10, 1), WindowCheck("w:two", 1, 1)))
    assert (await store.admit(both)).admitted
    refused = await store.admit(CounterAdmission(T0, "b", windows=both.windows))
    assert (refused.failed, refused.index) == ("window", 1)
    # "w:one" was not incremented by the refused admission.
    check = await store.admit(_window(T0, "w:one", 10, 0))
    assert check.used == (1,)


async def test_settlement_corrects_the_reserved_bucket(store: CounterStore) -> None:
    assert (await store.admit(_window(T0, "w:tpm", 100, 90))).admitted
    await store.settle(Settlement(T0 + 3, "m", windows=(WindowAdjust("w:tpm", int(T0), -80),)))
    result = await store.admit(_window(T0 + 4, "w:tpm", 100, 90))
    assert result.admitted
    assert result.used == (10,)
    # A correction larger than the bucket floors at zero; one for a bucket past the window is dropped.
    await store.settle(Settlement(T0 + 5, "m", windows=(WindowAdjust("w:tpm", int(T0), -1000),)))
    await store.settle(Settlement(T0 + 200, "m", windows=(WindowAdjust("w:tpm", int(T0), 1000),)))
    assert (await store.admit(_window(T0 + 6, "w:tpm", 100, 0))).used == (90,)


async def test_parallel_slots_take_release_and_expire(store: CounterStore) -> None:
    def slot(now: float, member: str) -> CounterAdmission:
        return CounterAdmission(now, member, slots=(SlotCheck("p:key", 2),), slot_lease=30.0)

    assert (await store.admit(slot(T0, "a"))).admitted
    assert (await store.admit(slot(T0, "b"))).admitted
    refused = await store.admit(slot(T0, "c"))
    assert (refused.admitted, refused.failed, refused.current, refused.retry_after) == (False, "slot", 2, 1.0)
    await store.settle(Settlement(T0 + 1, "a", slots=("p:key",)))
    await store.settle(Settlement(T0 + 1, "a", slots=("p:key",)))  # a second release frees nothing more
    assert (await store.admit(slot(T0 + 1, "c"))).admitted
    assert not (await store.admit(slot(T0 + 2, "d"))).admitted
    # Leases of crashed requests expire on their own.
    assert (await store.admit(slot(T0 + 31, "e"))).admitted


async def test_budget_counts_spend_and_reservations(store: CounterStore) -> None:
    def ask(member: str, amount: int = 400) -> CounterAdmission:
        return CounterAdmission(
            T0, member,
            budgets=(BudgetCheck("s:key:1d", "r:key", 1000, amount),),
            reservations=(Reservation("r:key", amount, 3600),),
        )

    assert (await store.admit(ask("a"))).admitted
    assert (await store.admit(ask("b"))).admitted
    refused = await store.admit(ask("c"))
    assert (refused.admitted, refused.failed, refused.current) == (False, "budget", 800)
    totals = await store.settle(
        Settlement(
            T0, "a", releases=(Reservation("r:key", 400, 0),), spends=(SpendAdd("s:key:1d", 150, 86400),)
        )
    )
    assert totals == (150,)
    assert (await store.admit(ask("c"))).admitted  # 150 spent + 400 + 400 reserved ≤ 1000
    # Spend + reservations at the limit refuse even a free request.
    await store.settle(Settlement(T0, "x", spends=(SpendAdd("s:key:1d", 50, 86400),)))
    refused = await store.admit(ask("d", 0))
    assert (refused.admitted, refused.current) == (False, 1000)


async def test_spend_windows_expire(store: CounterStore) -> None:
    await store.settle(Settlement(T0, "a", spends=(SpendAdd("s:k:30s", 500, 30),)))
    if isinstance(store, MemoryCounterStore):
        later = CounterAdmission(T0 + 31, "b", budgets=(BudgetCheck("s:k:30s", "r:k", 600, 200),))
        result = await store.admit(later)
        assert result.admitted
    else:
        # Redis expiry runs on the real clock; its TTL is what we can check.
        client = aioredis.Redis.from_url(REDIS_URL)
        ttls = [await client.ttl(key) async for key in client.scan_iter(match="*s:k:30s")]
        await client.aclose()
        assert ttls and all(0 < ttl <= 30 for ttl in ttls)


async def test_one_million_micro_dollars_add_up_to_exactly_one_dollar(store: CounterStore) -> None:
    micro = to_nano(Decimal("0.000001"))
    assert micro == 1000
    per_call = 1000
    calls = 1000 if isinstance(store, MemoryCounterStore) else 100
    batch = tuple(SpendAdd("s:exact", micro, None) for _ in range(per_call))
    for _ in range(calls):
        totals = await store.settle(Settlement(T0, "m", spends=batch))
    additions = calls * per_call
    expected = Decimal("0.000001") * additions
    assert from_nano(totals[-1]) == expected
    if additions == 1_000_000:
        assert from_nano(totals[-1]) == Decimal(1)


def test_nano_conversion_is_exact() -> None:
    assert to_nano(Decimal("0.000000001")) == 1
    assert to_nano(Decimal("1.5")) == 1_500_000_000
    assert to_nano(Decimal("0.0000000015")) == 2  # half-even
    assert to_nano(Decimal("0.0000000025")) == 2
    assert to_nano(Decimal("0.0000000011"), round_up=True) == 2
    assert from_nano(1_500_000_001) == Decimal("1.500000001")
    total = sum((to_nano(Decimal("0.000001")) for _ in range(1_000_000)), 0)
    assert from_nano(total) == Decimal(1)


async def test_concurrent_admissions_admit_exactly_the_limit(store: CounterStore) -> None:
    n = 40
    burst = [_window(T0, "w:burst", n // 2, 1, f"m{i}") for i in range(n)]
    results = await asyncio.gather(*(store.admit(admission) for admission in burst))
    assert sum(r.admitted for r in results) == n // 2


# ---------------------------------------------------------------------------------------------
# ResilientCounterStore, against a closed port
# ---------------------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_closed_port_raises_store_unavailable() -> None:
    dead = RedisCounterStore.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(CounterStoreUnavailable):
        await dead.admit(_window(T0))
    await dead.close()


async def test_fallback_uses_process_counters_and_warns_once() -> None:
    warnings: list[str] = []
    clock = _Clock()
    store = ResilientCounterStore(
        RedisCounterStore.from_url("redis://127.0.0.1:1/0"), MemoryCounterStore(), "fallback",
        clock=clock, retry_interval=5.0, warn=warnings.append,
    )
    assert store.healthy
    results = [await store.admit(_window(T0, limit=2, member=f"m{i}")) for i in range(3)]
    assert [r.admitted for r in results] == [True, True, False]
    assert all(r.via == "memory" for r in results)
    assert not store.healthy
    assert len(warnings) == 1
    assert "UNAVAILABLE" in warnings[0]
    assert "per process" in warnings[0]
    await store.close()


async def test_fail_open_and_fail_closed() -> None:
    open_store = ResilientCounterStore(
        RedisCounterStore.from_url("redis://127.0.0.1:1/0"), MemoryCounterStore(), "fail_open"
    )
    results = [await open_store.admit(_window(T0, limit=1)) for _ in range(3)]
    assert all(r.admitted and r.via == "none" for r in results)
    assert await open_store.settle(Settlement(T0, "m", spends=(SpendAdd("s", 5, None),), via="none")) == (5,)
    closed = ResilientCounterStore(
        RedisCounterStore.from_url("redis://127.0.0.1:1/0"), MemoryCounterStore(), "fail_closed"
    )
    with pytest.raises(CounterStoreUnavailable):
        await closed.admit(_window(T0))
    assert not closed.healthy


class _Flaky:
    """A Redis stand-in that is down until ``up`` is set (for the recovery path only)."""

    def __init__(self) -> None:
        self.up = False
        self.calls = 0
        self.inner = MemoryCounterStore()

    async def admit(self, admission: CounterAdmission) -> AdmissionResult:
        self.calls += 1
        if not self.up:
            raise CounterStoreUnavailable("down")
        result = await self.inner.admit(admission)
        return AdmissionResult(result.admitted, used=result.used, via="redis")

    async def settle(self, settlement: Settlement) -> tuple[int, ...]:
        return await self.inner.settle(settlement)

    async def close(self) -> None:
        return None


async def test_recovers_by_itself_after_the_retry_interval() -> None:
    flaky, clock = _Flaky(), _Clock()
    warnings: list[str] = []
    store = ResilientCounterStore(
        flaky, MemoryCounterStore(), "fallback", clock=clock, retry_interval=5.0, warn=warnings.append
    )
    assert (await store.admit(_window(T0))).via == "memory"
    flaky.up = True
    clock.now = 4.0
    assert (await store.admit(_window(T0))).via == "memory"  # not probed before the interval
    assert flaky.calls == 1
    clock.now = 5.0
    assert (await store.admit(_window(T0))).via == "redis"
    assert store.healthy
    assert len(warnings) == 2
    assert "recovered" in warnings[1]
