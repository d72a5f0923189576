"""Admission plans: everything about admitting one principal's requests on one route that does not
depend on the request — the model groups it may reach, the windows, slots and budget totals it
counts in with their counter keys and limits, the prices of its candidate deployments — built once
and reused for every request until one of its budget windows ends or ``PLAN_SECONDS`` pass (so a
changed price or deployment is seen within that time). Per request, only the amounts are new.

Building the chain's checks costs more than sending them (a key, user, team and org with limits and
two budgets each make 12 windows, 4 slots and 8 budget totals); with plans the per-request work is
a few tuples. A plan holds its principal, so a principal reloaded by authentication gets its own.
May import: ``auth``, ``call``, ``config``, ``store``, ``policy``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from tollgate.auth.principal import Entity, Principal
from tollgate.call import Destination
from tollgate.config import Price
from tollgate.policy.access import denying_entity
from tollgate.policy.budgets import BudgetLine, BudgetWindows
from tollgate.policy.limits import SlotSpec, WindowSpec, counted, per_model
from tollgate.policy.ticket import SpendTarget
from tollgate.store.counters import BudgetCheck, SlotCheck, to_nano

PLAN_SECONDS = 60.0
SPEND_MARGIN = 3600.0  # a window's total outlives the window this long: late settlements still count
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Plan:
    principal: Principal
    compiled_at: float
    valid_until: float
    primary: str
    reach: tuple[Destination, ...]  # the primary first, then each fallback the principal may use
    counted: bool  # whether anything goes to the counter store at all
    windows: tuple[WindowSpec, ...]
    slots: tuple[SlotSpec, ...]
    slot_checks: tuple[SlotCheck, ...]
    lines: tuple[BudgetLine, ...]
    budget_checks: tuple[BudgetCheck, ...]
    reserve_keys: tuple[str, ...]  # one per entity with a budget: its in-flight cost
    targets: tuple[SpendTarget, ...]  # where settlement adds the cost
    prices: tuple[tuple[Decimal, Decimal], ...]  # (input, output) per token of each reachable deployment

    @property
    def reachable(self) -> frozenset[str]:
        return frozenset(d.group for d in self.reach)

    def worst_case(self, input_tokens: int, output_tokens: int) -> Decimal:
        """This request's cost on the most expensive deployment it may reach."""
        return max((input_tokens * i + output_tokens * o for i, o in self.prices), default=_ZERO)


def compile_plan(
    principal: Principal,
    destinations: tuple[Destination, ...],
    entities: tuple[Entity, ...],
    now: float,
    *,
    resolve: Callable[[str], str | None],
    price_for: Callable[[str], Price],
    budgets: BudgetWindows,
    strict: bool,
) -> Plan:
    primary = destinations[0]
    reach = [primary]
    for destination in destinations[1:]:
        if all(d.group != destination.group for d in reach) and (
            denying_entity(principal, destination.name, destination.group) is None
        ):
            reach.append(destination)
    windows: list[WindowSpec] = []
    slots: list[SlotSpec] = []
    for entity in entities:
        if not entity.limits.empty:
            counted(entity, entity.limits, None, 0, windows, slots)
        if entity.model_limits:
            for index, destination in enumerate(reach):
                limits = per_model(entity, destination, resolve)
                if limits is not None:
                    counted(entity, limits, destination.group, index, windows, slots)
    lines = tuple(budgets.lines(entities, now))
    budgeted = any(line.budget is not None for line in lines)
    ends = [line.window.end for line in lines if not line.window.lifetime]
    return Plan(
        principal=principal,
        compiled_at=now,
        valid_until=min([now + PLAN_SECONDS, *ends]),
        primary=primary.group,
        reach=tuple(reach),
        counted=bool(windows or slots or lines),
        windows=tuple(windows),
        slots=tuple(slots),
        slot_checks=tuple(SlotCheck(s.key, s.limit, s.group) for s in slots),
        lines=lines,
        budget_checks=tuple(_budget_check(line, strict) for line in lines),
        reserve_keys=tuple(dict.fromkeys(
            f"r:{line.entity.kind}:{line.entity.id}" for line in lines if line.budget is not None
        )),
        targets=_targets(lines),
        prices=_prices(reach, price_for) if budgeted else (),
    )


def _budget_check(line: BudgetLine, strict: bool) -> BudgetCheck:
    reserve_key = f"r:{line.entity.kind}:{line.entity.id}"
    expires = None if line.window.lifetime else line.window.end + SPEND_MARGIN
    if line.budget is None:
        return BudgetCheck(line.spend_key, reserve_key, -1, expires=expires)
    return BudgetCheck(line.spend_key, reserve_key, to_nano(line.budget.max_budget), strict, expires=expires)


def _targets(lines: tuple[BudgetLine, ...]) -> tuple[SpendTarget, ...]:
    targets: dict[str, SpendTarget] = {}
    for line in lines:
        if line.spend_key not in targets:
            lifetime = line.window.lifetime
            expires = None if lifetime else line.window.end + SPEND_MARGIN
            start = 0.0 if lifetime else line.window.start
            targets[line.spend_key] = SpendTarget(line.entity, line.spend_key, expires, start, line.soft)
    return tuple(targets.values())


def _prices(
    reach: list[Destination], price_for: Callable[[str], Price]
) -> tuple[tuple[Decimal, Decimal], ...]:
    found: dict[tuple[Decimal, Decimal], None] = {}
    for destination in reach:
        for deployment_id in destination.deployment_ids:
            price = price_for(deployment_id)
            found[(price.input or _ZERO, price.output or _ZERO)] = None
    return tuple(found)
