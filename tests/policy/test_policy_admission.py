"""PolicyAdmission and CounterTicket: rate limits, slots, per-model limits under every name, and the
model groups a request may reach — with an injected clock, over the in-memory store (and Redis
for the concurrency case)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from tests.policy.conftest import (
    PRICE,
    T0,
    Clock,
    CountingStore,
    admit,
    call,
    chat,
    key,
    policy,
    route,
)
from tests.services import missing
from tollgate.auth.principal import Budget, Entity, Limits
from tollgate.call import Destination
from tollgate.canonical import EmbeddingRequest, Usage
from tollgate.config import Price
from tollgate.errors import GatewayError, ModelAccessDenied, RateLimited
from tollgate.policy import CounterTicket
from tollgate.store.counters import (
    AdmissionResult,
    CounterAdmission,
    CounterStore,
    CounterStoreUnavailable,
    Settlement,
)
from tollgate.store.memory_counters import MemoryCounterStore
from tollgate.store.redis_counters import RedisCounterStore


async def test_no_limits_skips_the_store_entirely() -> None:
    store = CountingStore()
    ticket = await admit(policy(store), Entity(kind="key", id="k"), Entity(kind="team", id="t"))
    await ticket.settle(Usage(10, 10), Decimal("1"))
    assert (store.admits, store.settles) == (0, 0)
    assert ticket.headers == {}
    assert ticket.reachable == frozenset({"gpt-4o"})


async def test_rpm_refuses_exactly_at_its_threshold_with_retry_after() -> None:
    clock = Clock()
    p = policy(clock=clock)
    for _ in range(3):
        await admit(p, key(rpm=3))
        clock.now += 1
    with pytest.raises(RateLimited) as caught:
        await admit(p, key(rpm=3))
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
async def test_token_limits_refuse_once_the_window_reaches_them(limits: dict[str, int], kind: str) -> None:
    p = policy()
    first = await admit(p, key(**limits))
    assert (first.input_estimate, first.output_reserve) == (17, 10)
    await admit(p, key(**limits))
    with pytest.raises(RateLimited) as caught:
        await admit(p, key(**limits))
    assert f"Limit type: {kind}." in caught.value.message


async def test_reservations_expect_output_but_not_the_maximum() -> None:
    p = policy(default_output_tokens=1024, expected_output_tokens=256)
    unset = await admit(p, key(output_tpm=10_000), request=chat(max_tokens=None))
    assert unset.output_reserve == 256
    small = await admit(p, key(output_tpm=10_000), request=chat(max_tokens=50))
    assert small.output_reserve == 50


async def test_a_tpm_limit_below_max_tokens_still_serves_requests() -> None:
    # LiteLLM serves a tpm_limit of 1000 with max_tokens 4096; so does tollgate, settling real usage.
    clock = Clock()
    p = policy(clock=clock)
    for _ in range(5):
        ticket = await admit(p, key(tpm=1000), request=chat(max_tokens=4096))
        await ticket.settle(Usage(input_tokens=17, output_tokens=100))
        clock.now += 1
    assert ticket.headers["x-ratelimit-limit-tokens"] == "1000"


async def test_a_request_larger_than_the_whole_limit_is_served_on_an_empty_window() -> None:
    clock = Clock()
    p = policy(clock=clock)
    huge = chat(text="y" * 8000, max_tokens=10)  # ~2,007 input tokens against a limit of 1,000
    first = await admit(p, key(tpm=1000), request=huge)
    await first.settle(Usage(input_tokens=2000, output_tokens=10))
    clock.now += 5
    with pytest.raises(RateLimited) as caught:
        await admit(p, key(tpm=1000), request=huge)
    # It can succeed, and the refusal says when: once the first request has left the window.
    assert caught.value.retry_after == 56.0
    assert "more than the limit" not in caught.value.message
    clock.now = T0 + 61
    await admit(p, key(tpm=1000), request=huge)


async def test_max_parallel_refuses_and_settle_releases_the_slot() -> None:
    p = policy()
    first = await admit(p, key(max_parallel=2))
    await admit(p, key(max_parallel=2))
    with pytest.raises(RateLimited) as caught:
        await admit(p, key(max_parallel=2))
    assert "Max parallel request limit reached" in caught.value.message
    assert caught.value.retry_after == 1.0
    await first.settle(None)
    await first.settle(None)  # idempotent: a second settle must not free another slot
    await admit(p, key(max_parallel=2))
    with pytest.raises(RateLimited):
        await admit(p, key(max_parallel=2))


async def test_async_with_settles_on_failure() -> None:
    p = policy()
    with pytest.raises(RuntimeError):
        async with await admit(p, key(max_parallel=1)) as ticket:
            raise RuntimeError("upstream failed")
    assert ticket.settled
    await admit(p, key(max_parallel=1))


async def test_settle_corrects_token_windows_with_real_usage() -> None:
    p = policy()
    ticket = await admit(p, key(tpm=60))  # reserves 27
    await ticket.settle(Usage(input_tokens=2, output_tokens=1))  # used 3: 24 freed
    second = await admit(p, key(tpm=60))
    assert second.headers["x-ratelimit-remaining-tokens"] == str(60 - 3 - 27)
    await second.settle(None)  # failed before any token: its 27 are released too
    third = await admit(p, key(tpm=60))
    assert third.headers["x-ratelimit-remaining-tokens"] == str(60 - 3 - 27)


async def test_sliding_window_has_no_burst_at_the_minute_boundary() -> None:
    clock = Clock(T0 + 59.5)
    p = policy(clock=clock)
    for _ in range(5):
        await admit(p, key(rpm=5))
    clock.now = T0 + 60.5  # a new clock minute
    with pytest.raises(RateLimited):
        await admit(p, key(rpm=5))
    clock.now = T0 + 120.0
    await admit(p, key(rpm=5))


async def test_per_model_limits_apply_only_to_their_model() -> None:
    entity = Entity(kind="team", id="t1", model_limits={"gpt-4o": Limits(rpm=1)})
    p = policy()
    await admit(p, entity)
    with pytest.raises(RateLimited) as caught:
        await admit(p, entity)
    assert "for model gpt-4o" in caught.value.message
    assert "team 't1'" in caught.value.message
    await admit(p, entity, request=chat(model="claude"))
    await admit(p, entity, request=chat(model="claude"))


GROUPS = {"sonnet": "claude", "us.anthropic.claude-v2": "claude", "claude": "claude", "gpt-4o": "gpt-4o"}


@pytest.mark.parametrize("keyed_by", ["claude", "sonnet", "us.anthropic.claude-v2"])
async def test_per_model_limits_bind_whatever_name_the_client_uses(keyed_by: str) -> None:
    # An entry keyed by the group, an alias or an upstream id binds the group, and every spelling
    # shares its counter: two requests under two names exhaust an rpm of 2.
    entity = Entity(kind="key", id="k", model_limits={keyed_by: Limits(rpm=2)})
    p = policy(resolve=GROUPS.get)

    def to(name: str) -> list[Destination]:
        return [Destination(name, "claude", ("claude-1",))]

    await admit(p, entity, request=chat(model="sonnet"), destinations=to("sonnet"))
    upstream = "us.anthropic.claude-v2"
    await admit(p, entity, request=chat(model=upstream), destinations=to(upstream))
    with pytest.raises(RateLimited) as caught:
        await admit(p, entity, request=chat(model="claude"), destinations=to("claude"))
    assert "for model claude" in caught.value.message


async def test_several_entries_for_one_group_combine_to_the_tightest() -> None:
    entity = Entity(kind="key", id="k", model_limits={"claude": Limits(rpm=5, tpm=100),
                                                      "sonnet": Limits(rpm=1)})
    p = policy(resolve=GROUPS.get)
    to_claude = [Destination("claude", "claude")]
    ticket = await admit(p, entity, request=chat(model="claude"), destinations=to_claude)
    assert ticket.headers["x-ratelimit-limit-requests"] == "1"
    assert ticket.headers["x-ratelimit-limit-tokens"] == "100"


async def test_every_level_must_admit() -> None:
    chain = (key(rpm=100), Entity(kind="user", id="u"), Entity(kind="org", id="o", limits=Limits(rpm=1)))
    p = policy()
    await admit(p, *chain)
    with pytest.raises(RateLimited) as caught:
        await admit(p, *chain)
    assert "org 'o'" in caught.value.message


async def test_headers_report_the_tightest_limit() -> None:
    chain = (key(rpm=10, tpm=1000), Entity(kind="team", id="t", limits=Limits(rpm=3, input_tpm=100)))
    ticket = await admit(policy(), *chain)
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
        await admit(policy(store), restricted)
    assert caught.value.status == 401
    assert store.admits == 0


async def test_access_to_a_group_allows_its_aliases_and_upstream_ids() -> None:
    restricted = Entity(kind="key", id="k", models=("claude",))
    ticket = await admit(policy(), restricted, request=chat(model="sonnet"),
                         destinations=[Destination("sonnet", "claude")])
    assert ticket.reachable == frozenset({"claude"})
    with pytest.raises(ModelAccessDenied):
        await admit(policy(), restricted, request=chat(model="gpt-4o"),
                    destinations=[Destination("gpt-4o", "gpt-4o")])


async def test_fallback_groups_the_principal_may_not_use_are_not_reachable() -> None:
    dear = Price(Decimal("0.001"), Decimal("0.001"))
    prices = {"a-1": PRICE, "b-1": dear, "c-1": PRICE}
    limited = Entity(kind="key", id="k", models=("a", "c"), budgets=(Budget(Decimal(10)),))
    p = policy(price_for=lambda d: prices[d])
    ticket = await admit(
        p, limited, request=chat(model="a"),
        destinations=[Destination("a", "a", ("a-1",)), Destination("b", "b", ("b-1",)),
                      Destination("c", "c", ("c-1",))],
    )
    assert ticket.reachable == frozenset({"a", "c"})
    # The budget estimate ignores the dear group the key can never reach.
    assert ticket.estimated_cost == Decimal("0.000037")


async def test_a_full_fallback_group_is_dropped_and_the_request_still_served() -> None:
    entity = Entity(kind="key", id="k", model_limits={"b": Limits(rpm=1), "a": Limits(rpm=10)})
    p = policy()
    to_b = [Destination("b", "b")]
    await admit(p, entity, request=chat(model="b"), destinations=to_b)  # b's one request this minute
    both = [Destination("a", "a"), Destination("b", "b")]
    ticket = await admit(p, entity, request=chat(model="a"), destinations=both)
    assert ticket.reachable == frozenset({"a"})
    with pytest.raises(RateLimited):
        await admit(p, entity, request=chat(model="b"), destinations=to_b)


async def test_fallback_windows_are_refunded_unless_the_fallback_answered() -> None:
    entity = Entity(kind="key", id="k", model_limits={"b": Limits(rpm=1, tpm=1000), "a": Limits(rpm=2)})
    p = policy()
    both = [Destination("a", "a"), Destination("b", "b")]
    first = await admit(p, entity, request=chat(model="a"), destinations=both)
    assert first.reachable == frozenset({"a", "b"})
    await first.settle(Usage(5, 5), Decimal(0), "a")  # a answered: b's request and tokens come back
    second = await admit(p, entity, request=chat(model="a"), destinations=both)
    assert second.reachable == frozenset({"a", "b"})
    await second.settle(Usage(5, 5), Decimal(0), "b")  # b answered: b's rpm stays counted
    third = await admit(p, entity, request=chat(model="c"), destinations=[Destination("c", "c"),
                                                                             Destination("b", "b")])
    assert third.reachable == frozenset({"c"})
    with pytest.raises(RateLimited) as caught:
        await admit(p, entity, request=chat(model="a"), destinations=both)
    assert "for model a" in caught.value.message  # a was tried twice: its rpm of 2 is used


async def test_store_outage_in_fail_closed_mode_is_a_503() -> None:
    class Down:
        async def admit(self, admission: CounterAdmission) -> AdmissionResult:
            raise CounterStoreUnavailable("down")

        async def settle(self, settlement: Settlement) -> tuple[int, ...]:
            return ()

        async def peek(self, keys: object) -> tuple[int | None, ...]:
            return ()

        async def close(self) -> None:
            return None

    with pytest.raises(GatewayError) as caught:
        await admit(policy(Down()), key(rpm=1))
    assert caught.value.status == 503


async def test_embeddings_reserve_no_output() -> None:
    request = EmbeddingRequest(model="text-embedding-3-small", inputs=("a" * 8, "b" * 8))
    ticket = await policy().admit(call(key(tpm=100), request=request), route(request))
    assert (ticket.input_estimate, ticket.output_reserve) == (4, 0)


async def _concurrency(store: CounterStore) -> int:
    p = policy(store)
    n = 30
    results = await asyncio.gather(*(admit(p, key(rpm=n // 2)) for _ in range(n)), return_exceptions=True)
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
