"""Shared counters for rate limits, concurrency slots and budget totals: the ``CounterStore``
protocol, its value types, and the in-memory implementation (one process, tests, no Redis).

A store knows nothing about principals or prices. ``policy`` turns a request into one
``CounterAdmission`` (every check of every entity, applied all-or-nothing) and later one ``Settlement``;
each is a single call here, and a single Lua script in ``redis_counters.RedisCounterStore``.
Time comes from the caller (``CounterAdmission.now``), so both stores follow the injected clock.

Sliding windows. A window counter keeps one bucket per whole second. At time ``t`` it counts the
buckets ``floor(t) - window … floor(t)``: ``window + 1`` buckets covering between ``window`` and
``window + 1`` seconds of history. That is conservative: every event of the exact interval
``(t - window, t]`` is counted, so no ``window``-second interval ever holds more than the limit
(no 2× burst at a minute boundary). The price is at most one second of extra wait: an event is
forgotten between ``window`` and ``window + 1`` seconds after it happened. ``retry_after`` is
computed from the buckets, so it is exact to that same second.

Money is integer nano-dollars (1e-9 USD) in the store, Decimal everywhere else; ``to_nano`` and
``from_nano`` convert exactly (Redis' Lua numbers are doubles: exact up to 2**53 nano = $9M).
May import: ``errors`` only (stdlib otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Literal, Protocol

NANO = Decimal("0.000000001")
CheckKind = Literal["budget", "window", "slot", ""]


class CounterStoreUnavailable(Exception):
    """The shared counter store could not be reached or answered with an error."""


def to_nano(amount: Decimal, *, round_up: bool = False) -> int:
    """Dollars → integer nano-dollars. Reservations round up (never under-reserve); spend rounds
    half-even (no drift over many additions)."""
    rounding = ROUND_CEILING if round_up else ROUND_HALF_EVEN
    return int(amount.quantize(NANO, rounding=rounding).scaleb(9))


def from_nano(nano: int) -> Decimal:
    return Decimal(nano).scaleb(-9)


# ---------------------------------------------------------------------------------------------
# Value types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """Refuse if spend + reserved ≥ limit, or spend + reserved + amount > limit (nano-dollars)."""

    spend_key: str
    reserve_key: str
    limit: int
    amount: int


@dataclass(frozen=True, slots=True)
class WindowCheck:
    """Refuse if the sliding-window sum + amount > limit; otherwise add amount to this second."""

    key: str
    limit: int
    amount: int


@dataclass(frozen=True, slots=True)
class SlotCheck:
    """Refuse if the live slots (leases not expired) + 1 > limit; otherwise take one."""

    key: str
    limit: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """Add ``amount`` to a counter (in-flight cost) whose key lives ``ttl`` seconds past its last use."""

    key: str
    amount: int
    ttl: int


@dataclass(frozen=True, slots=True)
class CounterAdmission:
    now: float
    member: str  # unique per admission: the slot lease's name
    budgets: tuple[BudgetCheck, ...] = ()
    windows: tuple[WindowCheck, ...] = ()
    slots: tuple[SlotCheck, ...] = ()
    reservations: tuple[Reservation, ...] = ()
    window_seconds: int = 60
    slot_lease: float = 900.0


@dataclass(frozen=True, slots=True)
class AdmissionResult:
    """``admitted`` or the first failing check (``failed`` kind and ``index`` into its tuple).

    ``used`` holds, per window check, the window sum before this admission (so remaining =
    limit - used - amount when admitted); ``current`` is the failing check's value (window sum,
    live slots, or spend + reserved in nano-dollars); ``via`` names the backend that decided.
    """

    admitted: bool
    failed: CheckKind = ""
    index: int = -1
    current: int = 0
    retry_after: float = 0.0
    used: tuple[int, ...] = ()
    via: str = "memory"


@dataclass(frozen=True, slots=True)
class WindowAdjust:
    """Add ``delta`` (may be negative; floored at 0) to ``bucket`` if it is still in the window."""

    key: str
    bucket: int
    delta: int


@dataclass(frozen=True, slots=True)
class SpendAdd:
    """Add ``amount`` nano-dollars to a spend total; ``ttl`` None keeps it for ever."""

    key: str
    amount: int
    ttl: int | None


@dataclass(frozen=True, slots=True)
class Settlement:
    now: float
    member: str
    windows: tuple[WindowAdjust, ...] = ()
    slots: tuple[str, ...] = ()  # slot keys whose lease ``member`` is released
    releases: tuple[Reservation, ...] = ()  # reservations to subtract (ttl unused)
    spends: tuple[SpendAdd, ...] = ()
    window_seconds: int = 60
    via: str = "memory"


class CounterStore(Protocol):
    async def admit(self, admission: CounterAdmission) -> AdmissionResult:
        """Evaluate every check; apply all of them or none. Raises ``CounterStoreUnavailable``."""
        ...

    async def settle(self, settlement: Settlement) -> tuple[int, ...]:
        """Apply a settlement; returns each spend total after its addition (nano-dollars)."""
        ...

    async def close(self) -> None: ...


def window_retry_after(buckets: Sequence[tuple[int, int]], need: int, now: float, window: int) -> float:
    """Seconds until ``need`` units leave the window, given live ``(second, count)`` buckets.

    A bucket for second ``b`` stops being counted at ``b + window + 1``. When even an empty
    window could not fit the request, the answer is one full window.
    """
    freed = 0
    for second, count in sorted(buckets):
        freed += count
        if freed >= need:
            return max(0.0, second + window + 1 - now)
    return float(window)


# ---------------------------------------------------------------------------------------------
# In-memory implementation
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Counter:
    value: int = 0
    expires: float | None = None


@dataclass(slots=True)
class MemoryCounterStore:
    """Per-process counters with exactly the Redis store's semantics.

    Each call runs without an ``await`` inside, so it is atomic within the event loop.
    Expired entries are swept every ``sweep_every`` admissions to bound memory.
    """

    sweep_every: int = 4096
    _windows: dict[str, dict[int, int]] = field(default_factory=dict)
    _slots: dict[str, dict[str, float]] = field(default_factory=dict)
    _counters: dict[str, _Counter] = field(default_factory=dict)
    _ops: int = 0

    async def admit(self, admission: CounterAdmission) -> AdmissionResult:
        now = admission.now
        self._ops += 1
        if self._ops % self.sweep_every == 0:
            self._sweep(now, admission.window_seconds)
        for i, budget in enumerate(admission.budgets):
            current = self._get(budget.spend_key, now) + self._get(budget.reserve_key, now)
            if current >= budget.limit or current + budget.amount > budget.limit:
                return AdmissionResult(False, "budget", i, current)
        second = int(now)
        oldest = second - admission.window_seconds
        used: list[int] = []
        for i, window in enumerate(admission.windows):
            buckets = self._live_buckets(window.key, oldest)
            total = sum(buckets.values())
            if total + window.amount > window.limit:
                need = total + window.amount - window.limit
                retry = window_retry_after(list(buckets.items()), need, now, admission.window_seconds)
                return AdmissionResult(False, "window", i, total, retry)
            used.append(total)
        for i, slot in enumerate(admission.slots):
            leases = self._live_slots(slot.key, now)
            if len(leases) + 1 > slot.limit:
                # A slot frees when some request ends, which cannot be predicted: suggest 1 s.
                return AdmissionResult(False, "slot", i, len(leases), 1.0)
        for window in admission.windows:
            buckets = self._windows.setdefault(window.key, {})
            buckets[second] = buckets.get(second, 0) + window.amount
        for slot in admission.slots:
            self._slots.setdefault(slot.key, {})[admission.member] = now + admission.slot_lease
        for reservation in admission.reservations:
            counter = self._counters.setdefault(reservation.key, _Counter())
            counter.value = self._get(reservation.key, now) + reservation.amount
            counter.expires = now + reservation.ttl
        return AdmissionResult(True, used=tuple(used))

    async def settle(self, settlement: Settlement) -> tuple[int, ...]:
        now = settlement.now
        oldest = int(now) - settlement.window_seconds
        for adjust in settlement.windows:
            buckets = self._windows.get(adjust.key)
            if buckets is None or adjust.bucket < oldest or adjust.bucket not in buckets:
                continue
            buckets[adjust.bucket] = max(0, buckets[adjust.bucket] + adjust.delta)
        for key in settlement.slots:
            leases = self._slots.get(key)
            if leases is not None:
                leases.pop(settlement.member, None)
        for release in settlement.releases:
            remaining = self._get(release.key, now) - release.amount
            if remaining <= 0:
                self._counters.pop(release.key, None)
            else:
                self._counters[release.key].value = remaining
        totals: list[int] = []
        for spend in settlement.spends:
            value = self._get(spend.key, now) + spend.amount
            counter = self._counters.setdefault(spend.key, _Counter())
            counter.value = value
            if spend.ttl is not None:
                counter.expires = now + spend.ttl
            totals.append(value)
        return tuple(totals)

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

    def _live_buckets(self, key: str, oldest: int) -> dict[int, int]:
        buckets = self._windows.get(key)
        if buckets is None:
            return {}
        stale = [second for second in buckets if second < oldest]
        for second in stale:
            del buckets[second]
        return buckets

    def _live_slots(self, key: str, now: float) -> dict[str, float]:
        leases = self._slots.get(key)
        if leases is None:
            return {}
        expired = [member for member, until in leases.items() if until <= now]
        for member in expired:
            del leases[member]
        return leases

    def _sweep(self, now: float, window_seconds: int) -> None:
        oldest = int(now) - window_seconds
        for key in [k for k, b in self._windows.items() if not b or max(b) < oldest]:
            del self._windows[key]
        for key in [k for k, s in self._slots.items() if all(u <= now for u in s.values())]:
            del self._slots[key]
        for key in [k for k, c in self._counters.items() if c.expires is not None and c.expires <= now]:
            del self._counters[key]
