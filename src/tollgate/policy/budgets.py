"""Budgets: the spend totals a request is checked against and settles into, the spend of record
they are rebuilt from, and what a refusal says. Money is ``Decimal``; durations and windows are
``config.durations``'.

Each budget of each entity is one *line*: the entity, the budget, and the window of its duration
that contains the admission, whose spend total lives under one counter key. An entity with a
soft budget and no budget keeps a lifetime line of its own, so the soft budget has a total.

Admission rules (``general_settings.budget_admission``; docs/enforcement.md states the bounds):

- ``litellm`` (default): admitted while spend + in-flight reservations < ``max_budget``. The
  first request under budget is served even if it ends over it, as LiteLLM does.
- ``strict``: also refused when spend + reservations + this request's worst case > ``max_budget``.

A refusal says the budget *has been exceeded* (400, LiteLLM's words) only when spend alone has
reached it. When requests in flight hold the rest, the refusal is a 429 that says so (a retry may
succeed once they finish); a strict refusal of a request whose worst case cannot fit says that.
May import: ``auth.principal``, ``config``, ``errors``, ``store``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from tollgate.auth.principal import Budget, Entity
from tollgate.config.durations import Duration, Window, parse_duration, window_at
from tollgate.errors import BudgetExceeded
from tollgate.store.records import SPEND_OF_RECORD_KINDS, SpendQuery


@dataclass(frozen=True, slots=True)
class BudgetLine:
    entity: Entity
    budget: Budget | None  # None: a total kept only for the entity's soft budget
    spend_key: str
    window: Window
    soft: Decimal | None = None  # the entity's soft budget is measured on this line's total


class BudgetWindows:
    """Budget lines at a moment. The current window of each duration is cached until ``now``
    leaves it (calendar months need datetime arithmetic, too slow to redo per request)."""

    def __init__(self) -> None:
        self._durations: dict[str, Duration] = {}
        self._windows: dict[str | None, Window] = {}

    def window(self, duration: str | None, now: float) -> Window:
        window = self._windows.get(duration)
        if window is None or not window.start <= now < window.end:
            window = self._windows[duration] = window_at(self._duration(duration), now)
        return window

    def lines(self, entities: tuple[Entity, ...], now: float) -> list[BudgetLine]:
        lines: list[BudgetLine] = []
        for entity in entities:
            soft = entity.soft_budget
            if entity.budgets:
                for position, budget in enumerate(entity.budgets):
                    tracked = soft if position == 0 else None
                    lines.append(self._line(entity, budget, budget.duration, now, tracked))
            elif soft is not None:
                lines.append(self._line(entity, None, None, now, soft))
        return lines

    def _line(
        self, entity: Entity, budget: Budget | None, duration: str | None, now: float, soft: Decimal | None
    ) -> BudgetLine:
        window = self.window(duration, now)
        start = "0" if window.lifetime else str(int(window.start))
        key = f"s:{entity.kind}:{entity.id}:{duration or 'life'}:{start}"
        return BudgetLine(entity, budget, key, window, soft)

    def _duration(self, text: str | None) -> Duration | None:
        if text is None:
            return None
        parsed = self._durations.get(text)
        if parsed is None:
            parsed = self._durations[text] = parse_duration(text, "budget_duration")
        return parsed


def spend_query(line: BudgetLine) -> SpendQuery | None:
    """What the database knows of a line's total, or ``None`` (a JWT service is not in the log)."""
    kind = line.entity.kind
    if kind not in SPEND_OF_RECORD_KINDS:
        return None
    if line.window.lifetime:
        return SpendQuery(kind, line.entity.id)
    start = datetime.fromtimestamp(line.window.start, UTC)
    return SpendQuery(kind, line.entity.id, start, datetime.fromtimestamp(line.window.end, UTC))


def budget_exceeded_message(
    current: Decimal, max_budget: Decimal, kind: str, name: str, duration: str | None
) -> str:
    """LiteLLM's wording, plus the entity and window so the caller knows which budget refused."""
    return (
        f"Budget has been exceeded! Current cost: {_money(current)}, "
        f"Max budget: {_money(max_budget)} {_where(kind, name, duration)}"
    )


def budget_refusal(
    line: BudgetLine, spent: Decimal, reserved: Decimal, estimate: Decimal, strict: bool
) -> BudgetExceeded:
    """Why ``line`` refused, in words that are true (see the module docstring)."""
    assert line.budget is not None
    entity, limit = line.entity, line.budget.max_budget
    name, duration = entity.alias or entity.id, line.budget.duration
    if spent >= limit:
        return BudgetExceeded(
            budget_exceeded_message(spent, limit, entity.kind, name, duration), code="budget_exceeded"
        )
    where = _where(entity.kind, name, duration)
    if spent + reserved >= limit or (strict and reserved and spent + estimate <= limit):
        return BudgetExceeded(
            f"Budget is held by requests in flight: spend {_money(spent)} + {_money(reserved)} reserved "
            f"by requests in flight of max budget {_money(limit)} {where}. Retry after 1 seconds.",
            status=429, code="budget_in_flight", retry_after=1.0, headers={"retry-after": "1"},
        )
    return BudgetExceeded(
        f"Budget would be exceeded by this request (budget_admission: strict): it may cost up to "
        f"{_money(estimate)}, and spend {_money(spent)} leaves {_money(limit - spent)} of max budget "
        f"{_money(limit)} {where}.",
        code="budget_would_exceed",
    )


def _where(kind: str, name: str, duration: str | None) -> str:
    window = f"{duration} window" if duration else "lifetime"
    return f"({kind} '{name}', {window})"


def _money(value: Decimal) -> str:
    return f"{value.normalize():f}"
