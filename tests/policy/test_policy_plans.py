"""Admission plans: reused while valid, rebuilt when a budget window ends, shared parts for shared
entities, and gone with their principal (the principal cache bounds them)."""

from __future__ import annotations

import gc
import weakref
from decimal import Decimal

from tests.policy.conftest import PRICE, T0
from tollgate.auth.principal import Budget, Entity, Limits, Principal
from tollgate.call import Destination
from tollgate.policy.plans import PLAN_SECONDS, Planner

TO = (Destination("m", "m", ("d1",)),)


def planner() -> Planner:
    return Planner(resolve=lambda name: name, price_for=lambda d: PRICE, strict=False)


def team() -> Entity:
    return Entity(kind="team", id="t", limits=Limits(rpm=5), budgets=(Budget(Decimal(1), "1h"),))


def principal(key_id: str, shared: Entity) -> Principal:
    own = Entity(kind="key", id=key_id, limits=Limits(tpm=100))
    return Principal(kind="key", entities=(own, shared))


def test_a_plan_is_reused_until_its_budget_window_ends() -> None:
    p = planner()
    who = principal("k1", team())
    first = p.plan(who, TO, who.entities, T0 + 10)
    assert p.plan(who, TO, who.entities, T0 + 20) is first
    assert first.valid_until == min(T0 + 10 + PLAN_SECONDS, T0 + 3600)
    later = p.plan(who, TO, who.entities, T0 + 3600)  # the next hour: a new spend key
    assert later is not first
    assert later.lines[0].spend_key != first.lines[0].spend_key


def test_keys_of_one_team_share_its_part() -> None:
    p = planner()
    shared = team()
    one, two = principal("k1", shared), principal("k2", shared)
    a, b = p.plan(one, TO, one.entities, T0), p.plan(two, TO, two.entities, T0)
    team_windows_a = [w for w in a.windows if w.entity is shared]
    team_windows_b = [w for w in b.windows if w.entity is shared]
    assert team_windows_a and all(x is y for x, y in zip(team_windows_a, team_windows_b, strict=True))
    assert len(shared.parts) == 1  # one part for the route, whichever key asked


def test_plans_go_with_their_principal() -> None:
    p = planner()
    shared = team()
    principals = [principal(f"k{i}", shared) for i in range(50)]
    for who in principals:
        p.plan(who, TO, who.entities, T0)
    assert all(len(who.plans) == 1 for who in principals)
    gone = [weakref.ref(who) for who in principals] + [weakref.ref(who.entities[0]) for who in principals]
    del principals, who
    gc.collect()
    assert all(ref() is None for ref in gone)  # nothing the planner holds keeps them alive
    assert len(shared.parts) == 1  # the team is still alive here: its part stays
