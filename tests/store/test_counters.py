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
    MISSING,
    BudgetCheck,
    CounterAdmission,
    CounterStore,
    Reservation,
    Settlement,
    SlotCheck,
    SpendAdd,
    WindowAdjust,
    WindowCheck,
    from_nano,
    to_nano,
)
from tollgate.store.memory_counters import MemoryCounterStore
from tollgate.store.redis_counters import RedisCounterStore

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = 1_700_000_000.0  # a whole second, so bucket arithmetic in the tests is easy to follow


async def redis_reachable() -> bool:
    client = aioredis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        await client.ping()
        return True
    except Exception:
        return False
    finally:
        await client.aclose()


async def drop_prefix(prefix: str) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match="{" + prefix + "}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[CounterStore]:
    if request.param == "memory":
        yield MemoryCounterStore()
        return
    if not await redis_reachable():
        missing("Redis is not reachable at 127.0.0.1:6379")
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    redis_store = RedisCounterStore.from_url(REDIS_URL, prefix=prefix, timeout=5.0)
    yield redis_store
    await redis_store.close()
    await drop_prefix(prefix)


def _window(
    now: float, key: str = "w:rpm", limit: int = 3, amount: int = 1, member: str | None = None
) -> CounterAdmission:
    return CounterAdmission(now, member or uuid.uuid4().hex, windows=(WindowCheck(key, limit, amount),))


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


async def test_token_window_admits_while_below_its_limit(store: CounterStore) -> None:
    assert (await store.admit(_window(T0, "w:tpm", 100, 40))).admitted
    assert (await store.admit(_window(T0 + 5, "w:tpm", 100, 40))).admitted
    # 80 counted < 100: admitted, although 80 + 30 ends over the limit (LiteLLM's rule).
    assert (await store.admit(_window(T0 + 8, "w:tpm", 100, 30))).admitted
    refused = await store.admit(_window(T0 + 10, "w:tpm", 100, 1))
    # 110 counted: 11 must leave, i.e. the first bucket (40, second T0) at T0 + 61.
    assert (refused.admitted, refused.current) == (False, 110)
    assert refused.retry_after == pytest.approx(51.0)


async def test_a_request_larger_than_the_whole_limit_fits_an_empty_window(store: CounterStore) -> None:
    assert (await store.admit(_window(T0, "w:big", 100, 1000))).admitted
    refused = await store.admit(_window(T0 + 1, "w:big", 100, 1000))
    assert not refused.admitted
    assert refused.retry_after == pytest.approx(60.0)  # when the window is empty again
    assert (await store.admit(_window(T0 + 61, "w:big", 100, 1000))).admitted


async def test_admission_is_all_or_nothing(store: CounterStore) -> None:
    both = CounterAdmission(T0, "a", windows=(WindowCheck("w:one", 10, 1), WindowCheck("w:two", 1, 1)))
    assert (await store.admit(both)).admitted
    refused = await store.admit(CounterAdmission(T0, "b", windows=both.windows))
    assert (refused.failed, refused.index) == ("window", 1)
    # "w:one" was not incremented by the refused admission.
    check = await store.admit(_window(T0, "w:one", 10, 0))
    assert check.used == (1,)


async def test_optional_groups_are_dropped_not_refused(store: CounterStore) -> None:
    full = CounterAdmission(T0, "x", windows=(WindowCheck("w:fallback", 1, 1),))
    assert (await store.admit(full)).admitted
    mixed = CounterAdmission(
        T0, "y",
        windows=(WindowCheck("w:primary", 5, 1), WindowCheck("w:fallback", 1, 1, group=1),
                 WindowCheck("w:other", 5, 1, group=2)),
        slots=(SlotCheck("p:fallback", 5, group=1), SlotCheck("p:other", 5, group=2)),
    )
    result = await store.admit(mixed)
    assert result.admitted
    assert result.dropped == frozenset({1})
    # The dropped group's checks were not applied; the kept group's were.
    probe = CounterAdmission(
        T0, "z", windows=(WindowCheck("w:fallback", 10, 0), WindowCheck("w:other", 10, 0)),
        slots=(SlotCheck("p:fallback", 1), SlotCheck("p:other", 2)),
    )
    assert (await store.admit(probe)).used == (1, 1)
    assert not (await store.admit(replace_slots(probe, SlotCheck("p:other", 1)))).admitted


def replace_slots(admission: CounterAdmission, *slots: SlotCheck) -> CounterAdmission:
    return CounterAdmission(admission.now, uuid.uuid4().hex, slots=slots)


async def test_settlement_corrects_the_reserved_bucket(store: CounterStore) -> None:
    assert (await store.admit(_window(T0, "w:tpm", 100, 90, member="a"))).admitted
    await store.settle(Settlement(T0 + 3, "a", windows=(WindowAdjust("w:tpm", int(T0), -80),)))
    result = await store.admit(_window(T0 + 4, "w:tpm", 100, 90, member="b"))
    assert result.admitted
    assert result.used == (10,)
    # A correction larger than its bucket floors at zero (b's own 90 stay in second T0 + 4).
    await store.settle(Settlement(T0 + 5, "b", windows=(WindowAdjust("w:tpm", int(T0), -1000),)))
    assert (await store.admit(_window(T0 + 6, "w:tpm", 100, 0, member="c"))).used == (90,)


async def test_usage_beyond_the_reservation_still_counts_after_its_bucket_left(store: CounterStore) -> None:
    assert (await store.admit(_window(T0, "w:long", 1000, 50, member="a"))).admitted
    # Settled 100 s later with 300 tokens: the reservation's bucket has left the window, so the
    # 250 beyond it go to the settling second; a smaller usage adds nothing.
    await store.settle(Settlement(T0 + 100, "a", windows=(WindowAdjust("w:long", int(T0), 250),)))
    assert (await store.admit(_window(T0 + 101, "w:long", 1000, 0, member="b"))).used == (250,)
    await store.settle(Settlement(T0 + 102, "b", windows=(WindowAdjust("w:long", int(T0), -50),)))
    assert (await store.admit(_window(T0 + 103, "w:long", 1000, 0, member="c"))).used == (250,)


async def test_slots_are_taken_and_given_back_once(store: CounterStore) -> None:
    def slot(member: str) -> CounterAdmission:
        return CounterAdmission(T0, member, slots=(SlotCheck("p:key", 2),))

    assert (await store.admit(slot("a"))).admitted
    assert (await store.admit(slot("b"))).admitted
    refused = await store.admit(slot("c"))
    assert (refused.admitted, refused.failed, refused.current, refused.retry_after) == (False, "slot", 2, 1.0)
    assert await store.settle(Settlement(T0 + 1, "a")) == ()
    # A second settlement of the same admission (a retry after a lost reply) gives nothing back.
    await store.settle(Settlement(T0 + 1, "a"))
    assert (await store.admit(slot("c"))).admitted
    assert not (await store.admit(slot("d"))).admitted


def _budget(member: str, amount: int = 400, *, strict: bool = False) -> CounterAdmission:
    return CounterAdmission(
        T0, member,
        budgets=(BudgetCheck("s:key:1d", "r:key", 1000, strict, 0, T0 + 86400),),
        reservations=(Reservation("r:key", amount),),
        cost=amount,
    )


async def test_budget_admits_while_spend_and_reservations_are_below_it(store: CounterStore) -> None:
    assert (await store.admit(_budget("a"))).admitted
    assert (await store.admit(_budget("b"))).admitted
    assert (await store.admit(_budget("c"))).admitted  # 800 < 1000: admitted, may end over
    refused = await store.admit(_budget("d"))
    assert (refused.admitted, refused.failed, refused.current, refused.reserved) == (False, "budget", 0, 1200)
    totals = await store.settle(Settlement(T0, "a", spends=(SpendAdd("s:key:1d", 150, T0 + 86400),)))
    assert totals == (150,)
    assert (await store.admit(_budget("d"))).admitted  # 150 spent + 800 reserved < 1000
    refused = await store.admit(_budget("e"))
    assert (refused.current, refused.reserved) == (150, 1200)


async def test_strict_budget_needs_room_for_the_worst_case(store: CounterStore) -> None:
    assert (await store.admit(_budget("a", strict=True))).admitted
    assert (await store.admit(_budget("b", strict=True))).admitted
    refused = await store.admit(_budget("c", strict=True))
    assert (refused.failed, refused.current, refused.reserved) == ("budget", 0, 800)
    # Spend at the limit refuses even a free request, in both modes.
    await store.settle(Settlement(T0, "a", spends=(SpendAdd("s:key:1d", 1000, T0 + 86400),)))
    assert not (await store.admit(_budget("d", 0))).admitted


async def test_missing_budget_totals_are_reported_until_seeded(store: CounterStore) -> None:
    missing = await store.admit(
        CounterAdmission(
            T0, "a",
            budgets=(BudgetCheck("s:seeded", "r:k", 1000), BudgetCheck("s:absent", "r:k", 1000)),
            windows=(WindowCheck("w:untouched", 10, 1),),
        )
    )
    assert (missing.admitted, missing.failed, missing.missing) == (False, "missing", (0, 1))
    seeded = CounterAdmission(
        T0, "b", budgets=(BudgetCheck("s:seeded", "r:k", 1000, seed=999, expires=T0 + 60),),
        windows=(WindowCheck("w:untouched", 10, 0),),
    )
    result = await store.admit(seeded)
    assert result.admitted
    assert result.used == (0,)  # the refused admission counted nothing
    # A seed only fills a missing total: the same admission again finds 999 and keeps it.
    assert (await store.admit(seeded)).admitted
    assert await store.peek(["s:seeded", "s:absent"]) == (999, None)
    refused = await store.admit(
        CounterAdmission(T0, "c", budgets=(BudgetCheck("s:seeded", "r:k", 999, seed=0, expires=T0 + 60),))
    )
    assert (refused.failed, refused.current) == ("budget", 999)


async def test_spend_is_added_only_to_totals_that_exist(store: CounterStore) -> None:
    await store.admit(CounterAdmission(T0, "a", budgets=(BudgetCheck("s:there", "r:k", -1, seed=5),)))
    totals = await store.settle(
        Settlement(T0, "a", spends=(SpendAdd("s:there", 10, None), SpendAdd("s:gone", 10, None)))
    )
    assert totals == (15, MISSING)
    assert await store.peek(["s:gone"]) == (None,)
    # Settling the same admission again adds nothing.
    assert await store.settle(Settlement(T0, "a", spends=(SpendAdd("s:there", 10, None),))) == ()
    assert await store.peek(["s:there"]) == (15,)


async def test_spend_windows_expire(store: CounterStore) -> None:
    total = BudgetCheck("s:k:30s", "r:k", -1, seed=0, expires=T0 + 30)
    await store.admit(CounterAdmission(T0, "a", budgets=(total,)))
    await store.settle(Settlement(T0, "a", spends=(SpendAdd("s:k:30s", 500, T0 + 30),)))
    if isinstance(store, MemoryCounterStore):
        later = CounterAdmission(T0 + 31, "b", budgets=(BudgetCheck("s:k:30s", "r:k", 600),))
        assert (await store.admit(later)).missing == (0,)
    else:
        # Redis expiry runs on the real clock; its TTL is what we can check.
        client = aioredis.Redis.from_url(REDIS_URL)
        ttls = [await client.ttl(key) async for key in client.scan_iter(match="*s:k:30s")]
        await client.aclose()
        assert ttls and all(0 < ttl <= 31 for ttl in ttls)


@pytest.fixture
async def redis_store() -> AsyncIterator[tuple[RedisCounterStore, aioredis.Redis, str]]:
    """A Redis store alone (for what only Redis has: expiries, records), a client and the key tag."""
    if not await redis_reachable():
        missing("Redis is not reachable at 127.0.0.1:6379")
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    store = RedisCounterStore.from_url(REDIS_URL, prefix=prefix, timeout=5.0)
    client = aioredis.Redis.from_url(REDIS_URL)
    yield store, client, "{" + prefix + "}:"
    await client.aclose()
    await store.close()
    await drop_prefix(prefix)


async def test_window_hashes_outlive_their_newest_bucket_by_the_window(
    redis_store: tuple[RedisCounterStore, aioredis.Redis, str],
) -> None:
    # The expiry is renewed by the first write of each second, not by every write.
    store, client, tag = redis_store
    key = tag + "v2:w:ttl"
    for _ in range(3):
        assert (await store.admit(_window(T0, "w:ttl", limit=10))).admitted
        await client.expire(key, 5)  # as if the second's first write had been long ago
        assert 0 < await client.ttl(key) <= 5  # later writes of the second leave it
    assert (await store.admit(_window(T0 + 1, "w:ttl", limit=10))).admitted
    assert 60 < await client.ttl(key) <= 62  # the next second's first write renews it


async def test_slots_carry_no_expiry_and_a_returning_replica_keeps_its_records(
    redis_store: tuple[RedisCounterStore, aioredis.Redis, str],
) -> None:
    # A slot's units are each in one record (given back by settlement or by the sweep of a dead
    # owner), so the slot has no expiry that could fire while it is in use; an owner given up for
    # dead (its record hash set to expire) keeps its records again once it is back.
    store, client, tag = redis_store
    admission = CounterAdmission(
        T0, "a", slots=(SlotCheck("slot:k", 2),), reservations=(Reservation("held:k", 5),), cost=5
    )
    assert (await store.admit(admission)).admitted
    assert await client.ttl(tag + "slot:k") == -1 and await client.ttl(tag + "held:k") == -1
    record = tag + "i:" + store.owner
    await client.expire(record, 100)
    await store.heartbeat(T0)
    assert await client.ttl(record) == -1
    await store.settle(Settlement(T0, "a"))
    assert await client.exists(tag + "slot:k", tag + "held:k") == 0  # back at 0: deleted


async def test_one_million_micro_dollars_add_up_to_exactly_one_dollar(store: CounterStore) -> None:
    micro = to_nano(Decimal("0.000001"))
    assert micro == 1000
    per_call = 1000
    calls = 1000 if isinstance(store, MemoryCounterStore) else 100
    batch = tuple(SpendAdd("s:exact", micro, None) for _ in range(per_call))
    totals: tuple[int, ...] = ()
    for i in range(calls):
        await store.admit(CounterAdmission(T0, f"m{i}", budgets=(BudgetCheck("s:exact", "r:x", -1, seed=0),)))
        totals = await store.settle(Settlement(T0, f"m{i}", spends=batch))
    additions = calls * per_call
    assert from_nano(totals[-1]) == Decimal("0.000001") * additions
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


async def test_redis_window_totals_follow_the_in_memory_store_over_random_traffic() -> None:
    """Redis keeps a running total per window (``_t``) and deletes the seconds that left it;
    over random admissions, settlements (up, down, below zero, into buckets already gone) and
    gaps longer than a window, every admission sees the same window totals as the in-memory
    store, which sums its buckets each time."""
    if not await redis_reachable():
        missing("Redis is not reachable at 127.0.0.1:6379")
    import random

    rng = random.Random(17)
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    redis_store = RedisCounterStore.from_url(REDIS_URL, prefix=prefix, timeout=5.0)
    memory = MemoryCounterStore()
    keys = ("w:a", "w:b")
    admitted: list[tuple[str, int, dict[str, int]]] = []  # member, bucket, amounts
    now = T0
    try:
        for step in range(600):
            now += rng.choice((0.0, 0.3, 0.9, 1.0, 2.5, 7.0)) if step % 150 else 75.0
            if admitted and rng.random() < 0.4:
                member, bucket, amounts = admitted.pop(rng.randrange(len(admitted)))
                adjust = tuple(
                    WindowAdjust(k, bucket, rng.randint(-3 * a - 5, 40)) for k, a in amounts.items()
                )
                settlement = Settlement(now, member, windows=adjust)
                assert await redis_store.settle(settlement) == await memory.settle(settlement)
                continue
            member = uuid.uuid4().hex
            amounts = {k: rng.randint(0, 30) for k in keys}
            admission = CounterAdmission(
                now, member, windows=tuple(WindowCheck(k, 10_000, amounts[k]) for k in keys)
            )
            in_redis, in_memory = await redis_store.admit(admission), await memory.admit(admission)
            assert (in_redis.admitted, in_redis.used) == (in_memory.admitted, in_memory.used), step
            admitted.append((member, int(now), amounts))
        # A window full to its limit refuses alike, with the same retry-after from its buckets.
        total = (await memory.admit(_window(now, "w:a", 1_000_000, 0))).used[0]
        tight = CounterAdmission(now, "last", windows=(WindowCheck("w:a", max(total, 1), 1),))
        in_redis, in_memory = await redis_store.admit(tight), await memory.admit(tight)
        assert (in_redis.admitted, in_redis.current, in_redis.retry_after) == (
            in_memory.admitted, in_memory.current, in_memory.retry_after,
        )
    finally:
        await redis_store.close()
        await drop_prefix(prefix)
