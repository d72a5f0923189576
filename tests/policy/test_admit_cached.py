"""PolicyAdmission.admit_cached: how a request answered from the response cache is admitted —
model access and exhausted budgets still refuse, it counts once in rpm, and it reserves nothing
(no tokens, no cost, no parallel slot)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.policy.test_policy_admission import Clock, CountingStore, call, key, policy
from tollgate.auth.principal import Budget, Entity, Limits
from tollgate.canonical import Usage
from tollgate.errors import BudgetExceeded, ModelAccessDenied, RateLimited


async def test_without_limits_the_store_is_not_asked() -> None:
    store = CountingStore()
    ticket = await policy(store).admit_cached(call(Entity(kind="key", id="k")))
    await ticket.settle(None, Decimal(0))
    assert (store.admits, store.settles) == (0, 0)


async def test_model_access_is_checked() -> None:
    barred = Entity(kind="key", id="k", models=("other-model",))
    with pytest.raises(ModelAccessDenied):
        await policy().admit_cached(call(barred))


async def test_a_hit_counts_once_in_rpm_with_the_other_requests() -> None:
    clock = Clock()
    p = policy(clock=clock)
    await p.admit(call(key(rpm=3)))
    first = await p.admit_cached(call(key(rpm=3)))
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    await p.admit_cached(call(key(rpm=3)))
    with pytest.raises(RateLimited) as caught:
        await p.admit_cached(call(key(rpm=3)))
    assert "Limit type: rpm" in caught.value.message


async def test_a_hit_uses_no_tokens_and_no_parallel_slot() -> None:
    p = policy()
    limits = {"tpm": 27, "input_tpm": 17, "output_tpm": 10, "max_parallel": 1}
    held = await p.admit(call(key(**limits)))  # 17 + 10 tokens and the one slot, still in flight
    for _ in range(5):
        await p.admit_cached(call(key(**limits)))
    await held.settle(Usage(0, 0), Decimal(0))
    await p.admit(call(key(**limits)))  # every token and the slot were left for this one


async def test_an_exhausted_budget_refuses_a_hit_and_a_hit_reserves_no_cost() -> None:
    budget = Entity(kind="team", id="t", budgets=(Budget(Decimal("0.0001")),))
    p = policy()
    # Nothing reserved by hits: a real request's worst case (17 * 1e-6 + 10 * 2e-6) still fits.
    for _ in range(3):
        await p.admit_cached(call(budget))
    ticket = await p.admit(call(budget))
    await ticket.settle(Usage(17, 10), Decimal("0.0001"))
    with pytest.raises(BudgetExceeded):
        await p.admit_cached(call(budget))


async def test_per_model_rpm_counts_hits_too() -> None:
    per_model = Entity(kind="key", id="k", model_limits={"gpt-4o": Limits(rpm=1)})
    p = policy()
    await p.admit_cached(call(per_model))
    with pytest.raises(RateLimited):
        await p.admit_cached(call(per_model))
