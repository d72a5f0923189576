"""``MemoryCounterStore``: the ``CounterStore`` of one process, with exactly the Redis store's
semantics (``store/counters.py`` describes them). The embedded default, the per-process fallback
when Redis is down, and the twin every counter test runs against.

Each call runs without an ``await`` inside, so it is atomic within the event loop.
May import: ``store.counters``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tollgate.store.counters import (
    COUNTER_TTL,
    MISSING,
    AdmissionResult,
    CounterAdmission,
    Settlement,
    window_retry_after,
)


@dataclass(slots=True)
class _Counter:
    value: int = 0
    expires: float | None = None


@dataclass(slots=True)
class MemoryCounterStore:
    """Per-process counters. Expired entries are swept every ``sweep_every`` admissions."""

    sweep_every: int = 4096
    _windows: dict[str, dict[int, int]] = field(default_factory=dict)
    _counters: dict[str, _Counter] = field(default_factory=dict)
    _records: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    _ops: int = 0

    async def admit(self, admission: CounterAdmission) -> AdmissionResult:
        now = admission.now
        self._ops += 1
        if self._ops % self.sweep_every == 0:
            self._sweep(now, admission.window_seconds)
        missing = self._seed(admission)
        if missing:
            return AdmissionResult(False, "missing", missing=missing)
        for i, budget in enumerate(admission.budgets):
            if budget.limit < 0:
                continue
            spent, reserved = self._get(budget.spend_key, now), self._get(budget.reserve_key, now)
            current = spent + reserved
            if current >= budget.limit or (budget.strict and current + admission.cost > budget.limit):
                return AdmissionResult(False, "budget", i, spent, reserved)
        oldest = int(now) - admission.window_seconds
        dropped: set[int] = set()
        used: list[int] = []
        for i, window in enumerate(admission.windows):
            if window.group in dropped:
                used.append(0)
                continue
            buckets = self._live_buckets(window.key, oldest)
            total = sum(buckets.values())
            if total >= window.limit:
                if window.group == 0:
                    need = total - window.limit + 1
                    retry = window_retry_after(list(buckets.items()), need, now, admission.window_seconds)
                    return AdmissionResult(False, "window", i, total, retry_after=retry)
                dropped.add(window.group)
            used.append(total)
        for i, slot in enumerate(admission.slots):
            if slot.group in dropped:
                continue
            live = self._get(slot.key, now)
            if live >= slot.limit:
                if slot.group == 0:
                    # A slot frees when some request ends, which cannot be predicted: suggest 1 s.
                    return AdmissionResult(False, "slot", i, live, retry_after=1.0)
                dropped.add(slot.group)
        self._apply(admission, dropped)
        return AdmissionResult(True, used=tuple(used), dropped=frozenset(dropped))

    def _seed(self, admission: CounterAdmission) -> tuple[int, ...]:
        missing: list[int] = []
        for i, budget in enumerate(admission.budgets):
            self._get(budget.spend_key, admission.now)  # drops a total whose window has expired
            if budget.spend_key in self._counters:
                continue
            if budget.seed is None:
                missing.append(i)
                continue
            self._counters[budget.spend_key] = _Counter(budget.seed, budget.expires)
        return tuple(missing)

    def _apply(self, admission: CounterAdmission, dropped: set[int]) -> None:
        now, second = admission.now, int(admission.now)
        for window in admission.windows:
            if window.group in dropped or not window.amount:
                continue
            buckets = self._windows.setdefault(window.key, {})
            buckets[second] = buckets.get(second, 0) + window.amount
        record: list[tuple[str, int]] = []
        for slot in admission.slots:
            if slot.group not in dropped:
                self._add(slot.key, 1, now)
                record.append((slot.key, 1))
        for reservation in admission.reservations:
            if reservation.amount > 0:
                self._add(reservation.key, reservation.amount, now)
                record.append((reservation.key, reservation.amount))
        self._records[admission.member] = tuple(record)

    async def settle(self, settlement: Settlement) -> tuple[int, ...]:
        record = self._records.pop(settlement.member, None)
        if record is None:
            return ()
        now = settlement.now
        for key, amount in record:
            self._add(key, -amount, now)
        second = int(now)
        oldest = second - settlement.window_seconds
        for adjust in settlement.windows:
            buckets = self._windows.get(adjust.key)
            if buckets is not None and adjust.bucket >= oldest and adjust.bucket in buckets:
                buckets[adjust.bucket] = max(0, buckets[adjust.bucket] + adjust.delta)
            elif adjust.delta > 0:
                buckets = self._windows.setdefault(adjust.key, {})
                buckets[second] = buckets.get(second, 0) + adjust.delta
        totals: list[int] = []
        for spend in settlement.spends:
            counter = self._counters.get(spend.key)
            if counter is None or (counter.expires is not None and counter.expires <= now):
                totals.append(MISSING)
                continue
            counter.value += spend.amount
            if spend.expires is not None:
                counter.expires = spend.expires
            totals.append(counter.value)
        return tuple(totals)

    async def peek(self, keys: Sequence[str]) -> tuple[int | None, ...]:
        return tuple(c.value if (c := self._counters.get(key)) is not None else None for key in keys)

    def reset(self) -> None:
        """Forget everything (the fallback store, when Redis is back: its totals are stale)."""
        self._windows.clear()
        self._counters.clear()
        self._records.clear()

    async def close(self) -> None:
        return None

    def _get(self, key: str, now: float) -> int:
        counter = self._counters.get(key)
        if counter is None:
            return 0
        if counter.expires is not None and counter.expires <= now:
            del self._counters[key]
            return 0
        return counter.value

    def _add(self, key: str, amount: int, now: float) -> None:
        value = self._get(key, now) + amount
        if value <= 0:
            self._counters.pop(key, None)
        else:
            self._counters[key] = _Counter(value, now + COUNTER_TTL)

    def _live_buckets(self, key: str, oldest: int) -> dict[int, int]:
        buckets = self._windows.get(key)
        if buckets is None:
            return {}
        stale = [second for second in buckets if second < oldest]
        for second in stale:
            del buckets[second]
        return buckets

    def _sweep(self, now: float, window_seconds: int) -> None:
        oldest = int(now) - window_seconds
        for key in [k for k, b in self._windows.items() if not b or max(b) < oldest]:
            del self._windows[key]
        for key in [k for k, c in self._counters.items() if c.expires is not None and c.expires <= now]:
            del self._counters[key]
