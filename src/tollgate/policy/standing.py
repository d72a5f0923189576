"""Where an entity stands against its budgets right now: the spend in each budget's *current*
window and the instant that window really resets — the numbers ``/key/info``, ``/user/info``,
``/team/info`` and ``/organization/info`` show, read from the same counters and windows that
admission enforces (so what the API says never disagrees with what is refused).

A total the counters do not hold (no request in this window yet, or Redis lost it) is the spend
of record from the database, as admission would rebuild it.
May import: ``auth.principal``, ``config``, ``store``, ``policy``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tollgate.auth.principal import Budget, Entity, EntityKind
from tollgate.policy.admission import SpendOfRecord
from tollgate.policy.budgets import BudgetWindows, spend_query
from tollgate.store.counters import CounterStore, CounterStoreUnavailable, from_nano
from tollgate.store.records import EntityPolicy


@dataclass(frozen=True, slots=True)
class WindowSpend:
    max_budget: Decimal
    duration: str | None
    spend: Decimal  # in the current window; the lifetime total for a budget without duration
    reset_at: datetime | None  # the end of the current window; None for a lifetime budget


class BudgetStanding:
    """``windows(kind, id, budgets)`` and ``annotate(view, kind, id, policy)`` for the admin API."""

    def __init__(
        self, counters: CounterStore, spend_of_record: SpendOfRecord | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._counters = counters
        self._spend_of_record = spend_of_record
        self._clock = clock
        self._budgets = BudgetWindows()

    async def windows(
        self, kind: EntityKind, entity_id: str, budgets: tuple[Budget, ...]
    ) -> list[WindowSpend]:
        if not budgets:
            return []
        entity = Entity(kind=kind, id=entity_id, budgets=budgets)
        lines = self._budgets.lines((entity,), self._clock())
        try:
            held = await self._counters.peek([line.spend_key for line in lines])
        except CounterStoreUnavailable:
            held = tuple(None for _ in lines)
        missing = [i for i, value in enumerate(held) if value is None]
        found: dict[int, Decimal] = {}
        queries = [(i, q) for i in missing if (q := spend_query(lines[i])) is not None]
        if queries and self._spend_of_record is not None:
            totals = await self._spend_of_record([q for _, q in queries])
            found = {i: total for (i, _), total in zip(queries, totals, strict=True)}
        out: list[WindowSpend] = []
        for i, (line, value) in enumerate(zip(lines, held, strict=True)):
            assert line.budget is not None
            spend = from_nano(value) if value is not None else found.get(i, Decimal(0))
            reset = None if line.window.lifetime else datetime.fromtimestamp(line.window.end, UTC)
            out.append(WindowSpend(line.budget.max_budget, line.budget.duration, spend, reset))
        return out

    async def annotate(
        self, view: dict[str, Any], kind: str, entity_id: str, policy: EntityPolicy
    ) -> dict[str, Any]:
        """``view`` (a LiteLLM-shaped info object) with the true window figures: each of
        ``budgets`` gets its window's ``spend`` and real ``reset_at``; LiteLLM's ``spend`` is the
        ``max_budget``/``budget_duration`` window's (LiteLLM zeroes ``spend`` at each reset) with
        ``budget_reset_at`` its real end; ``lifetime_spend`` keeps the all-time total."""
        budgets = tuple(Budget(b.max_budget, b.duration) for b in policy.all_budgets())
        windows = await self.windows(_KINDS[kind], entity_id, budgets)
        out = dict(view)
        out["lifetime_spend"] = float(policy.spend)
        listed = windows[: len(policy.budgets)]
        out["budgets"] = [
            {**shown, "spend": float(w.spend), "reset_at": _iso(w.reset_at)}
            for shown, w in zip(view.get("budgets") or [], listed, strict=False)
        ]
        if policy.max_budget is not None and policy.budget_duration is not None:
            single = windows[-1]
            out["spend"] = float(single.spend)
            out["budget_reset_at"] = _iso(single.reset_at)
        return out


_KINDS: dict[str, EntityKind] = {
    "key": "key", "user": "user", "team": "team", "org": "org", "organization": "org",
}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
