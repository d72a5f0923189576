"""The ``CounterTicket``: what one admitted request holds, and how it settles.

Settlement gives back the request's slots and budget reservations (its record in the counter
store), corrects each token window by (actual − reserved) in the bucket where the reservation went
(or adds any excess to the settling second once that bucket has left the window), refunds the
per-model windows of fallback groups that did not answer (the primary group's request stays
counted: it was tried), and adds the real cost to every budget total of the chain. ``settle`` is
idempotent and never raises a store error, so it belongs in a ``finally``; ``usage=None`` (failed
before any token) counts 0 tokens, while the request itself stays counted in ``rpm``.
May import: ``auth.principal``, ``canonical``, ``policy.limits``, ``store.counters``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType

from tollgate.auth.principal import Entity
from tollgate.canonical import Usage
from tollgate.policy.limits import WindowSpec
from tollgate.store.counters import (
    MISSING,
    CounterStore,
    CounterStoreUnavailable,
    Settlement,
    SpendAdd,
    Via,
    WindowAdjust,
    to_nano,
)


@dataclass(frozen=True, slots=True)
class SoftBudgetCrossed:
    """An entity's spend passed its soft budget in the window starting at ``window_start``."""

    entity_kind: str
    entity_id: str
    soft_budget: Decimal
    spend: Decimal
    window_start: float


@dataclass(frozen=True, slots=True)
class SpendTarget:
    """Where settlement adds the real cost; ``soft`` set on the one that tracks the soft budget."""

    entity: Entity
    key: str
    expires: float | None  # when the total may be forgotten (its window's end plus a margin)
    window_start: float
    soft: Decimal | None = None


class CounterTicket:
    """One admitted request's reservations. Use ``settle(usage, cost, group)`` or ``async with``."""

    __slots__ = (
        "_amounts", "_bucket", "_clock", "_dropped", "_member", "_on_soft_budget", "_primary", "_settled",
        "_spends", "_store", "_via", "_warn", "_window_seconds", "_windows", "estimated_cost", "headers",
        "input_estimate", "output_reserve", "reachable",
    )

    def __init__(
        self,
        *,
        store: CounterStore | None = None,
        clock: Callable[[], float] | None = None,
        member: str = "",
        bucket: int = 0,
        windows: tuple[WindowSpec, ...] = (),
        amounts: tuple[int, ...] = (),
        dropped: frozenset[int] = frozenset(),
        spends: tuple[SpendTarget, ...] = (),
        via: Via = "memory",
        window_seconds: int = 60,
        headers: dict[str, str] | None = None,
        primary: str = "",
        reachable: frozenset[str] = frozenset(),
        input_estimate: int = 0,
        output_reserve: int = 0,
        estimated_cost: Decimal = Decimal(0),
        on_soft_budget: Callable[[SoftBudgetCrossed], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._member = member
        self._bucket = bucket
        self._windows = windows
        self._amounts = amounts
        self._dropped = dropped
        self._spends = spends
        self._via = via
        self._window_seconds = window_seconds
        self._primary = primary
        self._on_soft_budget = on_soft_budget
        self._warn = warn
        self._settled = store is None
        self.headers = headers or {}
        self.reachable = reachable
        self.input_estimate = input_estimate
        self.output_reserve = output_reserve
        self.estimated_cost = estimated_cost

    @property
    def settled(self) -> bool:
        return self._settled

    @property
    def counted_in(self) -> str:
        return "" if self._store is None else self._via

    async def __aenter__(self) -> CounterTicket:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.settle(None)

    async def settle(self, usage: Usage | None, cost: Decimal = Decimal(0), group: str | None = None) -> None:
        """Settle once; ``group`` is the model group that answered (the primary when ``None``)."""
        if self._settled or self._store is None or self._clock is None:
            return
        self._settled = True
        now = self._clock()
        cost_nano = to_nano(cost) if cost > 0 else 0
        targets = self._spends if cost_nano else ()
        settlement = Settlement(
            now,
            self._member,
            windows=self._adjustments(usage, group or self._primary),
            spends=tuple(SpendAdd(t.key, cost_nano, t.expires) for t in targets),
            window_seconds=self._window_seconds,
            via=self._via,
        )
        try:
            if self._via == "memory" or self._via == "lease":
                # In-process counters settle without yielding, so a cancellation cannot cut in.
                totals = await self._store.settle(settlement)
            else:
                # Shielded: a client disconnect cancelling the request must not cut the write short.
                totals = await asyncio.shield(self._store.settle(settlement))
        except CounterStoreUnavailable as exc:
            if self._warn is not None:
                self._warn(f"could not settle request counters: {exc}")
            return
        self._soft_budget_events(targets, totals, cost_nano)

    def _adjustments(self, usage: Usage | None, served: str) -> tuple[WindowAdjust, ...]:
        actual_in = usage.prompt_tokens if usage is not None else 0
        actual_out = usage.output_tokens if usage is not None else 0
        actual = {"tpm": actual_in + actual_out, "input_tpm": actual_in, "output_tpm": actual_out}
        adjustments: list[WindowAdjust] = []
        dropped = self._dropped
        for spec, amount in zip(self._windows, self._amounts, strict=True):
            if spec.group and spec.group in dropped:
                continue  # never counted
            if spec.model is None or spec.model == served:
                if spec.metric == "rpm":
                    continue
                delta = actual[spec.metric] - amount
            elif spec.metric == "rpm" and spec.group == 0:
                continue  # the primary group was tried before the fallback answered
            else:
                delta = -amount  # a group that did not answer gives its reservation back
            if delta:
                adjustments.append(WindowAdjust(spec.key, self._bucket, delta))
        return tuple(adjustments)

    def _soft_budget_events(
        self, targets: tuple[SpendTarget, ...], totals: tuple[int, ...], added: int
    ) -> None:
        if self._on_soft_budget is None:
            return
        for target, total in zip(targets, totals, strict=False):
            if target.soft is None or total == MISSING:
                continue
            threshold = to_nano(target.soft)
            # Additions are atomic, so exactly one settlement sees the total step over the line.
            if total - added < threshold <= total:
                self._on_soft_budget(
                    SoftBudgetCrossed(
                        target.entity.kind, target.entity.id, target.soft,
                        Decimal(total).scaleb(-9), target.window_start,
                    )
                )
