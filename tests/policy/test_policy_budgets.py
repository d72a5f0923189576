"""Budget admission: LiteLLM's rule and the strict mode at their edges, refusals that say what
happened, the overshoot bound with parallel requests, totals rebuilt from the spend of record,
calendar windows and soft budgets — with an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.policy.conftest import PRICE, T0, Clock, admit, call, chat, policy, route
from tollgate.auth.principal import Budget, Entity
from tollgate.canonical import Usage
from tollgate.config import parse_config
from tollgate.errors import BudgetExceeded, GatewayError, RateLimited
from tollgate.policy import CounterTicket, PolicyAdmission, SoftBudgetCrossed
from tollgate.store.memory_counters import MemoryCounterStore
from tollgate.store.records import SpendQuery

# Each request is estimated at 17 × $0.000001 + 10 × $0.000002 = $0.000037 (its worst case).
ESTIMATE = Decimal("0.000037")


def budget_key(*budgets: Budget, soft: Decimal | None = None) -> Entity:
    return Entity(kind="key", id="k1", budgets=budgets, soft_budget=soft)


async def test_the_first_request_is_served_even_when_its_worst_case_exceeds_the_budget() -> None:
    # LiteLLM's rule: spend 0 < max_budget admits, although 0.000037 > 0.00001.
    p = policy()
    tiny = budget_key(Budget(Decimal("0.00001")))
    first = await admit(p, tiny)
    assert first.estimated_cost == ESTIMATE
    # While it is in flight, its reservation holds the budget: a 429 that does not say "exceeded".
    with pytest.raises(BudgetExceeded) as held:
        await admit(p, tiny)
    assert held.value.status == 429
    assert "exceeded" not in held.value.message
    assert "held by requests in flight" in held.value.message
    assert held.value.headers["retry-after"] == "1"
    await first.settle(Usage(17, 10), ESTIMATE)
    with pytest.raises(BudgetExceeded) as spent:
        await admit(p, tiny)
    assert spent.value.status == 400
    assert spent.value.message == (
        "Budget has been exceeded! Current cost: 0.000037, Max budget: 0.00001 (key 'k1', lifetime)"
    )


async def test_strict_mode_refuses_a_worst_case_that_cannot_fit() -> None:
    p = policy(strict_budgets=True)
    tiny = budget_key(Budget(Decimal("0.00001"), "1d"))
    with pytest.raises(BudgetExceeded) as caught:
        await admit(p, tiny)
    assert caught.value.status == 400
    assert caught.value.message.startswith("Budget would be exceeded by this request")
    assert "(budget_admission: strict)" in caught.value.message
    assert "may cost up to 0.000037" in caught.value.message
    assert "Budget has been exceeded" not in caught.value.message


async def test_strict_mode_says_when_requests_in_flight_hold_the_room() -> None:
    p = policy(strict_budgets=True)
    entity = budget_key(Budget(Decimal("0.0001"), "1d"))
    await admit(p, entity)
    await admit(p, entity)  # 0.000074 reserved; a third worst case would pass 0.0001
    with pytest.raises(BudgetExceeded) as caught:
        await admit(p, entity)
    assert caught.value.status == 429
    assert "spend 0 + 0.000074 reserved" in caught.value.message


async def _overshoot(strict: bool, billed: Decimal) -> tuple[int, Decimal]:
    """20 requests at once against a $0.0002 budget, each billed ``billed``; (admitted, spend)."""
    store = MemoryCounterStore()
    p = policy(store, strict_budgets=strict)
    entity = budget_key(Budget(Decimal("0.0002"), "1d"))
    results = await asyncio.gather(*(admit(p, entity) for _ in range(20)), return_exceptions=True)
    tickets = [r for r in results if isinstance(r, CounterTicket)]
    assert all(isinstance(r, CounterTicket | BudgetExceeded) for r in results)
    for ticket in tickets:
        await ticket.settle(Usage(17, 10), billed)
    (spend,) = await store.peek([f"s:key:k1:1d:{int(T0)}"])
    assert spend is not None
    return len(tickets), Decimal(spend).scaleb(-9)


async def test_parallel_overshoot_is_bounded_by_one_request() -> None:
    # litellm: admitted while reservations < budget: 6 × 0.000037 = 0.000222 ≥ 0.0002 stops the 7th.
    admitted, spend = await _overshoot(False, ESTIMATE)
    assert admitted == 6
    assert spend == 6 * ESTIMATE
    assert spend - Decimal("0.0002") < ESTIMATE  # overshoot < one request's cost
    admitted, spend = await _overshoot(True, ESTIMATE)
    assert admitted == 5  # strict: 5 × 0.000037 = 0.000185 ≤ 0.0002 < 6 ×
    assert spend <= Decimal("0.0002")


async def test_usage_beyond_the_estimate_adds_its_excess_to_the_bound() -> None:
    # Billed 5× the estimate (an upstream ignoring max_tokens): the bound is one request plus the
    # excess of the requests in flight when the last one was admitted (docs/enforcement.md).
    billed = 5 * ESTIMATE
    admitted, spend = await _overshoot(False, billed)
    assert admitted == 6
    bound = billed + (admitted - 1) * (billed - ESTIMATE)
    assert spend - Decimal("0.0002") <= bound
    admitted, spend = await _overshoot(True, billed)
    assert spend - Decimal("0.0002") <= admitted * (billed - ESTIMATE)


async def test_budgets_with_several_windows() -> None:
    clock = Clock(T0 + 3600)
    entity = budget_key(Budget(Decimal("0.001"), "1h"), Budget(Decimal("0.0015"), "1d"))
    p = policy(clock=clock)

    async def spend(amount: str) -> None:
        ticket = await admit(p, entity, request=chat(max_tokens=0))
        await ticket.settle(Usage(), Decimal(amount))

    await spend("0.001")
    with pytest.raises(BudgetExceeded) as caught:
        await admit(p, entity)
    assert "1h window" in caught.value.message
    clock.now += 3600  # next hour: the hourly budget resets, the daily one does not
    await spend("0.0005")
    with pytest.raises(BudgetExceeded) as caught:
        await admit(p, entity)
    assert "1d window" in caught.value.message
    clock.now = T0 + 86400  # next UTC day
    await spend("0.0009")


async def test_weekly_budgets_reset_on_monday_midnight_utc() -> None:
    sunday_night = datetime(2023, 11, 19, 23, 59, tzinfo=UTC).timestamp()
    clock = Clock(sunday_night)
    entity = budget_key(Budget(Decimal("0.001"), "7d"))
    p = policy(clock=clock)
    ticket = await admit(p, entity, request=chat(max_tokens=0))
    await ticket.settle(Usage(), Decimal("0.001"))
    with pytest.raises(BudgetExceeded):
        await admit(p, entity)
    clock.now = datetime(2023, 11, 20, tzinfo=UTC).timestamp()  # Monday 00:00 UTC
    await admit(p, entity)


class Record:
    """A spend of record that answers from a table and counts the questions."""

    def __init__(self, totals: dict[tuple[str, str, bool], Decimal]) -> None:
        self.totals = totals
        self.asked: list[SpendQuery] = []

    async def __call__(self, queries: Sequence[SpendQuery]) -> list[Decimal]:
        self.asked += queries
        return [self.totals.get((q.kind, q.entity_id, q.start is None), Decimal(0)) for q in queries]


async def test_budget_totals_are_rebuilt_from_the_spend_of_record() -> None:
    # A fresh counter store (a restart, Redis data lost, an outage's fallback) knows no spend: the
    # database's lifetime total refuses the spent key, the window's sum is asked once per window.
    record = Record({("key", "k1", True): Decimal("0.5"), ("user", "u1", False): Decimal("0.2")})
    clock = Clock()
    p = policy(clock=clock, spend_of_record=record)
    spent_key = budget_key(Budget(Decimal("0.5")))
    with pytest.raises(BudgetExceeded) as caught:
        await admit(p, spent_key)
    assert "Current cost: 0.5" in caught.value.message
    user = Entity(kind="user", id="u1", budgets=(Budget(Decimal("0.3"), "1d"),))
    for _ in range(3):
        ticket = await admit(p, user)
        await ticket.settle(Usage(1, 1), Decimal(0))
    user_queries = [q for q in record.asked if q.kind == "user"]
    assert len(user_queries) == 1
    assert (user_queries[0].start, user_queries[0].end) == (
        datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(T0 + 86400, UTC)
    )
    clock.now += 86400  # a new window: asked again
    await admit(p, user)
    assert len([q for q in record.asked if q.kind == "user"]) == 2


async def test_an_unreadable_spend_of_record_refuses_rather_than_guesses() -> None:
    async def down(queries: Sequence[SpendQuery]) -> list[Decimal]:
        raise OSError("database unreachable")

    with pytest.raises(GatewayError) as caught:
        await admit(policy(spend_of_record=down), budget_key(Budget(Decimal(1), "1d")))
    assert caught.value.status == 503
    assert "budget totals unavailable" in caught.value.message


async def test_soft_budget_emits_once_per_window() -> None:
    events: list[SoftBudgetCrossed] = []
    clock = Clock()
    entity = budget_key(Budget(Decimal(10), "1d"), soft=Decimal("0.01"))
    p = policy(clock=clock, on_soft_budget=events.append)

    async def spend(amount: str) -> None:
        ticket = await admit(p, entity)
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


async def test_a_soft_budget_without_a_budget_keeps_its_own_total() -> None:
    events: list[SoftBudgetCrossed] = []
    record = Record({("team", "t1", True): Decimal("0.009")})
    team = Entity(kind="team", id="t1", soft_budget=Decimal("0.01"))
    p = policy(spend_of_record=record, on_soft_budget=events.append)
    ticket = await admit(p, team)
    await ticket.settle(Usage(1, 1), Decimal("0.002"))
    assert [e.spend for e in events] == [Decimal("0.011")]


async def test_proxy_entity_from_config() -> None:
    config = parse_config(
        {
            "general_settings": {"max_parallel_requests": 1},
            "litellm_settings": {"max_budget": 0.0001, "budget_duration": "30d"},
        },
        env={},
    )
    p = PolicyAdmission.from_config(config, MemoryCounterStore(), price_for=lambda n: PRICE, clock=Clock())
    request = chat()
    first = await p.admit(call(request=request), route(request))
    with pytest.raises(RateLimited) as caught:
        await p.admit(call(request=request), route(request))
    assert "proxy 'proxy'" in caught.value.message
    await first.settle(Usage(1, 1), Decimal("0.0001"))
    with pytest.raises(BudgetExceeded) as budget:
        await p.admit(call(request=request), route(request))
    assert "proxy 'proxy', 30d window" in budget.value.message


async def test_budget_admission_mode_comes_from_the_config() -> None:
    config = parse_config({"general_settings": {"budget_admission": "strict"}}, env={})
    p = PolicyAdmission.from_config(config, MemoryCounterStore(), price_for=lambda n: PRICE, clock=Clock())
    with pytest.raises(BudgetExceeded, match="budget_admission: strict"):
        await admit(p, budget_key(Budget(Decimal("0.00001"))))
