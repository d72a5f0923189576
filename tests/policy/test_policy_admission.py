"""PolicyAdmission.admit and CounterTicket.settle with an injected clock, over the in-memory store
(and Redis for the concurrency case)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.services import missing
from tollgate.auth.principal import Budget, Entity, Limits, Principal
from tollgate.call import Call
from tollgate.canonical import ChatRequest, EmbeddingRequest, Message, TextPart, Usage
from tollgate.config import Price, parse_config
from tollgate.errors import BudgetExceeded, GatewayError, ModelAccessDenied, RateLimited
from tollgate.policy import CounterTicket, PolicyAdmission, SoftBudgetCrossed
from tollgate.store.counters import (
    AdmissionResult,
    CounterAdmission,
    CounterStore,
    MemoryCounterStore,
    Settlement,
)
from tollgate.store.redis_counters import RedisCounterStore

T0 = 1_700_006_400.0  # 2023-11-15 00:00:00 UTC: a day boundary
PRICE = Price(input=Decimal("0.000001"), output=Decimal("0.000002"))


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """Wraps a store and counts calls, to prove the no-limits path skips the store."""

    def __init__(self) -> None:
        self.inner = MemoryCounterStore()
        self.admits = 0
        self.settles = 0

    async def admit(self, admission: CounterAdmission) -> AdmissionResult:
        self.admits += 1
        return await self.inner.admit(admission)

    async def settle(self, settlement: Settlement) -> tuple[int, ...]:
        self.settles += 1
        return await self.inner.settle(settlement)

    async def close(self) -> None:
        return None


def chat(text: str = "x" * 40, max_tokens: int | None = 10, model: str = "gpt-4o") -> ChatRequest:
    # 40 ASCII chars = 10 tokens + 4 message + 3 request overhead = 17 input tokens.
    return ChatRequest(model=model, messages=(Message("user", (TextPart(text),)),), max_tokens=max_tokens)


def call(*entities: Entity, request: ChatRequest | EmbeddingRequest | None = None) -> Call:
    principal = Principal(kind="key", entities=entities)
    return Call(principal, request or chat(), "openai", uuid.uuid4().hex, T0)


def policy(store: CounterStore | None = None, clock: Clock | None = None, **kwargs: Any) -> PolicyAdmission:
    chosen = store or MemoryCounterStore()
    return PolicyAdmission(chosen, price_for=lambda name: PRICE, clock=clock or Clock(), **kwargs)


def key(**limits: Any) -> Entity:
    return Entity(kind="key", id="k1", limits=Limits(**limits))


async def test_no_limits_skips_the_store_entirely() -> None:
    store = CountingStore()
    ticket = await policy(store).admit(call(Entity(kind="key", id="k"), Entity(kind="team", id="t")))
    await ticket.settle(Usage(10, 10), Decimal("1"))
    assert (store.admits, store.settles) == (0, 0)
    assert ticket.headers == {}


async def test_rpm_refuses_exactly_at_its_threshold_with_retry_after() -> None:
    clock = Clock()
    p = policy(clock=clock)
    for _ in range(3):
        await p.admit(call(key(rpm=3)))
        clock.now += 1
    with pytest.raises(RateLimited) as caught:
        await p.admit(call(key(rpm=3)))
    err = caught.value
    assert err.status == 429
    assert "Limit type: rpm" in err.message
    assert "key 'k1'" in err.message
    assert err.retry_after == 58.0  # the first request (T0) leaves the window at T0 + 61
    assert err.headers["retry-after"] == "58"
    assert err.headers["x-ratelimit-remaining-requests"] == "0"


@pytest.mark.parametrize(
    ("limits", "kind"),
    [
        ({"tpm": 27 * 2}, "tpm"),  # 17 input + 10 output per request
        ({"input_tpm": 17 * 2}, "input_tpm"),
        ({"output_tpm": 10 * 2}, "output_tpm"),
    ],
)
async def test_token_limits_refuse_exactly_at_their_threshold(limits: dict[str, int], kind: str) -> None:
    p = policy()
    first = await p.admit(call(key(**limits)))
    assert (first.input_estimate, first.output_reserve) == (17, 10)
    await p.admit(call(key(**limits)))
    with pytest.raises(RateLimited) as caught:
        await p.admit(call(key(**limits)))
    assert f"Limit type: {kind}." in caught.value.message


async def test_output_reservation_defaults_when_max_tokens_is_absent() -> None:
    p = policy(default_output_tokens=500)
    ticket = await p.admit(call(key(output_tpm=1000), request=chat(max_tokens=None)))
    assert ticket.output_reserve == 500
    await p.admit(call(key(output_tpm=1000), request=chat(max_tokens=None)))
    with pytest.raises(RateLimited):
        await p.admit(call(key(output_tpm=1000), request=chat(max_tokens=None)))


async def test_max_parallel_refuses_and_settle_releases_the_slot() -> None:
    p = policy()
    first = await p.admit(call(key(max_parallel=2)))
    await p.admit(call(key(max_parallel=2)))
    with pytest.raises(RateLimited) as caught:
        await p.admit(call(key(max_parallel=2)))
    assert "Max parallel request limit reached" in caught.value.message
    assert caught.value.retry_after == 1.0
    await first.settle(None)
    await first.settle(None)  # idempotent: a second settle must not free another slot
    await p.admit(call(key(max_parallel=2)))
    with pytest.raises(RateLimited):
        await p.admit(call(key(max_parallel=2)))


async def test_async_with_settles_on_failure() -> None:
    p = policy()
    with pytest.raises(RuntimeError):
        async with await p.admit(call(key(max_parallel=1))) as ticket:
            raise RuntimeError("upstream failed")
    assert ticket.settled
    await p.admit(call(key(max_parallel=1)))


async def test_settle_corrects_token_windows_with_real_usage() -> None:
    p = policy()
    ticket = await p.admit(call(key(tpm=60)))  # reserves 27
    await ticket.settle(Usage(input_tokens=2, output_tokens=1))  # used 3: 24 freed
    second = await p.admit(call(key(tpm=60)))
    assert second.headers["x-ratelimit-remaining-tokens"] == str(60 - 3 - 27)
    await second.settle(None)  # failed before any token: its 27 are released too
    third = await p.admit(call(key(tpm=60)))
    assert third.headers["x-ratelimit-remaining-tokens"] == str(60 - 3 - 27)


async def test_sliding_window_has_no_burst_at_the_minute_boundary() -> None:
    clock = Clock(T0 + 59.5)
    p = policy(clock=clock)
    for _ in range(5):
        await p.admit(call(key(rpm=5)))
    clock.now = T0 + 60.5  # a new clock minute
    with pytest.raises(RateLimited):
        await p.admit(call(key(rpm=5)))
    clock.now = T0 + 120.0
    await p.admit(call(key(rpm=5)))


async def test_per_model_limits_apply_only_to_their_model() -> None:
    entity = Entity(kind="team", id="t1", model_limits={"gpt-4o": Limits(rpm=1)})
    p = policy()
    await p.admit(call(entity))
    with pytest.raises(RateLimited) as caught:
        await p.admit(call(entity))
    assert "for model gpt-4o" in caught.value.message
    assert "team 't1'" in caught.value.message
    await p.admit(call(entity, request=chat(model="claude")))
    await p.admit(call(entity, request=chat(model="claude")))


async def test_every_level_must_admit() -> None:
    chain = (key(rpm=100), Entity(kind="user", id="u"), Entity(kind="org", id="o", limits=Limits(rpm=1)))
    p = policy()
    await p.admit(call(*chain))
    with pytest.raises(RateLimited) as caught:
        await p.admit(call(*chain))
    assert "org 'o'" in caught.value.message


async def test_headers_report_the_tightest_limit() -> None:
    chain = (key(rpm=10, tpm=1000), Entity(kind="team", id="t", limits=Limits(rpm=3, input_tpm=100)))
    ticket = await policy().admit(call(*chain))
    assert ticket.headers == {
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "2",
        "x-ratelimit-limit-tokens": "100",
        "x-ratelimit-remaining-tokens": str(100 - 17),
    }


async def test_access_is_checked_before_counting() -> None:
    store = CountingStore()
    restricted = Entity(kind="key", id="k", models=("claude-*",), limits=Limits(rpm=1))
    with pytest.raises(ModelAccessDenied) as caught:
        await policy(store).admit(call(restricted))
    assert caught.value.status == 401
    assert store.admits == 0


def budget_key(*budgets: Budget, soft: Decimal | None = None) -> Entity:
    return Entity(kind="key", id="k1", budgets=budgets, soft_budget=soft)


async def test_budget_counts_reservations_of_requests_in_flight() -> None:
    # Each request is estimated at 17 × $0.000001 + 10 × $0.000002 = $0.000037.
    entity = budget_key(Budget(Decimal("0.0001"), "1d"))
    p = policy()
    first = await p.admit(call(entity), ["gpt-4o"])
    assert first.estimated_cost == Decimal("0.000037")
    await p.admit(call(entity), ["gpt-4o"])
    with pytest.raises(BudgetExceeded) as caught:
        await p.admit(call(entity), ["gpt-4o"])
    err = caught.value
    assert err.status == 400
    assert err.message.startswith("Budget has been exceeded! Current cost: 0.000074, Max budget: 0.0001")
    assert "key 'k1', 1d window" in err.message
    await first.settle(Usage(input_tokens=5, output_tokens=5), Decimal("0.000015"))
    await p.admit(call(entity), ["gpt-4o"])  # 0.000015 spent + 0.000074 reserved ≤ 0.0001


async def test_budget_estimate_uses_the_most_expensive_candidate() -> None:
    prices = {"cheap": Price(Decimal("0.000001"), Decimal("0.000001")), "dear": PRICE}
    p = PolicyAdmission(MemoryCounterStore(), price_for=lambda n: prices.get(n, Price()), clock=Clock())
    ticket = await p.admit(call(budget_key(Budget(Decimal(1), None))), ["cheap", "dear", "unknown"])
    assert ticket.estimated_cost == Decimal("0.000037")


async def test_budgets_with_several_windows() -> None:
    clock = Clock(T0 + 3600)
    entity = budget_key(Budget(Decimal("0.001"), "1h"), Budget(Decimal("0.0015"), "1d"))
    p = policy(clock=clock)

    async def spend(amount: str) -> None:
        ticket = await p.admit(call(entity, request=chat(max_tokens=0)), ["gpt-4o"])
        await ticket.settle(Usage(), Decimal(amount))

    await spend("0.00099")
    with pytest.raises(BudgetExceeded) as caught:
        await p.admit(call(entity), ["gpt-4o"])
    assert "1h window" in caught.value.message
    clock.now += 3600  # next hour: the hourly budget resets, the daily one does not
    await spend("0.0005")
    with pytest.raises(BudgetExceeded) as caught:
        await p.admit(call(entity), ["gpt-4o"])
    assert "1d window" in caught.value.message
    clock.now = T0 + 86400  # next UTC day
    await spend("0.0009")


async def test_soft_budget_emits_once_per_window() -> None:
    events: list[SoftBudgetCrossed] = []
    clock = Clock()
    entity = budget_key(Budget(Decimal(10), "1d"), soft=Decimal("0.01"))
    p = policy(clock=clock, on_soft_budget=events.append)

    async def spend(amount: str) -> None:
        ticket = await p.admit(call(entity), ["gpt-4o"])
        await ticket.settle(Usage(1, 1), Decimal(amount))

    await spend("0.006")
    assert events == []
    await spend("0.006")
    await spend("0.006")
    assert len(events) == 1
    assert (events[0].entity_kind, events[0].entity_id, events[0].spend) == ("key", "k1", Decimal("0.012"))
    assert events[0].window_start == T0
    clock.now += 86400
    await spend("0.02")
    assert len(events) == 2
    assert events[1].window_start == T0 + 86400


async def test_proxy_entity_from_config() -> None:
    config = parse_config(
        {
            "general_settings": {"max_parallel_requests": 1},
            "litellm_settings": {"max_budget": 0.0001, "budget_duration": "30d"},
        },
        env={},
    )
    p = PolicyAdmission.from_config(config, MemoryCounterStore(), price_for=lambda n: PRICE, clock=Clock())
    first = await p.admit(call(), ["gpt-4o"])
    with pytest.raises(RateLimited) as caught:
        await p.admit(call(), ["gpt-4o"])
    assert "proxy 'proxy'" in caught.value.message
    await first.settle(Usage(1, 1), Decimal("0.00007"))
    with pytest.raises(BudgetExceeded) as budget:
        await p.admit(call(), ["gpt-4o"])
    assert "proxy 'proxy', 30d window" in budget.value.message


async def test_store_outage_in_fail_closed_mode_is_a_503() -> None:
    class Down:
        async def admit(self, admission: CounterAdmission) -> AdmissionResult:
            from tollgate.store.counters import CounterStoreUnavailable

            raise CounterStoreUnavailable("down")

        async def settle(self, settlement: Settlement) -> tuple[int, ...]:
            return ()

        async def close(self) -> None:
            return None

    with pytest.raises(GatewayError) as caught:
        await policy(Down()).admit(call(key(rpm=1)))
    assert caught.value.status == 503


async def test_embeddings_reserve_no_output() -> None:
    request = EmbeddingRequest(model="text-embedding-3-small", inputs=("a" * 8, "b" * 8))
    ticket = await policy().admit(call(key(tpm=100), request=request))
    assert (ticket.input_estimate, ticket.output_reserve) == (4, 0)


async def _concurrency(store: CounterStore) -> int:
    p = policy(store)
    n = 30
    results = await asyncio.gather(
        *(p.admit(call(key(rpm=n // 2))) for _ in range(n)), return_exceptions=True
    )
    unexpected = [r for r in results if not isinstance(r, CounterTicket | RateLimited)]
    assert unexpected == []
    return sum(isinstance(r, CounterTicket) for r in results)


async def test_concurrent_admissions_memory() -> None:
    assert await _concurrency(MemoryCounterStore()) == 15


async def test_concurrent_admissions_redis() -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=0.5)
    try:
        await client.ping()
    except Exception:
        missing("Redis is not reachable at 127.0.0.1:6379")
    prefix = f"tollgate-test-{uuid.uuid4().hex[:12]}"
    store = RedisCounterStore.from_url("redis://127.0.0.1:6379/0", prefix=prefix, timeout=5.0)
    try:
        assert await _concurrency(store) == 15
    finally:
        await store.close()
        keys = [k async for k in client.scan_iter(match="{" + prefix + "}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
