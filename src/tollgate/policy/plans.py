"""Admission plans: everything about admitting one principal's requests on one route that does not
depend on the request — the model groups it may reach, the windows, slots and budget totals it
counts in with their counter keys and limits, the prices of its candidate deployments — built once
and reused for every request until one of its budget windows ends or ``PLAN_SECONDS`` pass (so a
changed price or deployment is seen within that time). Per request, only the amounts are new.

Building the chain's checks costs more than sending them (a key, user, team and org with limits and
two budgets each make 12 windows, 4 slots and 8 budget totals). A plan is made of one *part* per
entity, and a user's, team's or organisation's part is shared by every key of theirs (their
``Entity`` objects are shared by authentication), so a cached plan costs little beyond its key's
own part. A principal keeps its plans and an entity its parts (``Principal.plans``,
``Entity.parts``): they live exactly as long as it does, so the principal cache's bound is theirs.
May import: ``auth``, ``call``, ``config``, ``store``, ``policy``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain

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
Reach = tuple[Destination, ...]


@dataclass(frozen=True, slots=True)
class Part:
    """One entity's share of a plan, for one reach."""

    compiled_at: float
    valid_until: float
    windows: tuple[WindowSpec, ...]
    slots: tuple[SlotSpec, ...]
    lines: tuple[BudgetLine, ...]
    budget_checks: tuple[BudgetCheck, ...]
    reserve_keys: tuple[str, ...]
    targets: tuple[SpendTarget, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    compiled_at: float
    valid_until: float
    primary: str
    reach: Reach  # the primary first, then each fallback the principal may use
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


class Planner:
    """Builds plans and keeps them on their principals (see the module docstring)."""

    def __init__(
        self, *, resolve: Callable[[str], str | None], price_for: Callable[[str], Price], strict: bool
    ) -> None:
        self._resolve = resolve
        self._price_for = price_for
        self._strict = strict
        self._budgets = BudgetWindows()

    def plan(
        self, principal: Principal, destinations: tuple[Destination, ...], entities: tuple[Entity, ...],
        now: float,
    ) -> Plan:
        found: Plan | None = principal.plans.get(destinations)
        if found is not None and found.compiled_at <= now < found.valid_until:
            return found
        plan = principal.plans[destinations] = self._compile(principal, destinations, entities, now)
        return plan

    def _compile(
        self, principal: Principal, destinations: tuple[Destination, ...], entities: tuple[Entity, ...],
        now: float,
    ) -> Plan:
        primary = destinations[0]
        reach = [primary]
        for destination in destinations[1:]:
            if all(d.group != destination.group for d in reach) and (
                denying_entity(principal, destination.name, destination.group) is None
            ):
                reach.append(destination)
        reached = tuple(reach)
        parts = [self._part(entity, reached, now) for entity in entities]
        windows = tuple(chain.from_iterable(p.windows for p in parts))
        slots = tuple(chain.from_iterable(p.slots for p in parts))
        lines = tuple(chain.from_iterable(p.lines for p in parts))
        budgeted = any(line.budget is not None for line in lines)
        return Plan(
            compiled_at=now,
            valid_until=min([now + PLAN_SECONDS, *(p.valid_until for p in parts)]),
            primary=primary.group,
            reach=reached,
            counted=bool(windows or slots or lines),
            windows=windows,
            slots=slots,
            slot_checks=tuple(SlotCheck(s.key, s.limit, s.group) for s in slots),
            lines=lines,
            budget_checks=tuple(chain.from_iterable(p.budget_checks for p in parts)),
            reserve_keys=tuple(chain.from_iterable(p.reserve_keys for p in parts)),
            targets=tuple(chain.from_iterable(p.targets for p in parts)),
            prices=self._prices(reached) if budgeted else (),
        )

    def _part(self, entity: Entity, reach: Reach, now: float) -> Part:
        found: Part | None = entity.parts.get(reach)
        if found is not None and found.compiled_at <= now < found.valid_until:
            return found
        part = entity.parts[reach] = self._compile_part(entity, reach, now)
        return part

    def _compile_part(self, entity: Entity, reach: Reach, now: float) -> Part:
        windows: list[WindowSpec] = []
        slots: list[SlotSpec] = []
        if not entity.limits.empty:
            counted(entity, entity.limits, None, 0, windows, slots)
        if entity.model_limits:
            for index, destination in enumerate(reach):
                limits = per_model(entity, destination, self._resolve)
                if limits is not None:
                    counted(entity, limits, destination.group, index, windows, slots)
        lines = tuple(self._budgets.lines((entity,), now))
        reserve_key = f"held:{entity.kind}:{entity.id}"  # in-flight cost (not earlier versions' "r:")
        ends = [line.window.end for line in lines if not line.window.lifetime]
        return Part(
            compiled_at=now,
            valid_until=min([now + PLAN_SECONDS, *ends]),
            windows=tuple(windows),
            slots=tuple(slots),
            lines=lines,
            budget_checks=tuple(_budget_check(line, reserve_key, self._strict) for line in lines),
            reserve_keys=(reserve_key,) if any(line.budget is not None for line in lines) else (),
            targets=_targets(lines),
        )

    def _prices(self, reach: Reach) -> tuple[tuple[Decimal, Decimal], ...]:
        found: dict[tuple[Decimal, Decimal], None] = {}
        for destination in reach:
            for deployment_id in destination.deployment_ids:
                price = self._price_for(deployment_id)
                found[(price.input or _ZERO, price.output or _ZERO)] = None
        return tuple(found)


def _expires(line: BudgetLine) -> float | None:
    return None if line.window.lifetime else line.window.end + SPEND_MARGIN


def _budget_check(line: BudgetLine, reserve_key: str, strict: bool) -> BudgetCheck:
    if line.budget is None:
        return BudgetCheck(line.spend_key, reserve_key, -1, expires=_expires(line))
    limit = to_nano(line.budget.max_budget)
    return BudgetCheck(line.spend_key, reserve_key, limit, strict, expires=_expires(line))


def _targets(lines: tuple[BudgetLine, ...]) -> tuple[SpendTarget, ...]:
    targets: dict[str, SpendTarget] = {}
    for line in lines:
        if line.spend_key not in targets:
            start = 0.0 if line.window.lifetime else line.window.start
            target = SpendTarget(line.entity, line.spend_key, _expires(line), start, line.soft)
            targets[line.spend_key] = target
    return tuple(targets.values())
