"""Shared counters for rate limits, concurrency slots and budget totals: the ``CounterStore``
protocol and its value types. ``memory_counters`` (one process, tests, no Redis) and
``redis_counters`` (shared by replicas) implement it with the same semantics and one test suite.

A store knows nothing about principals or prices. ``policy`` turns a request into one
``CounterAdmission`` (every check of every entity, applied all-or-nothing) and later one
``Settlement``; each is a single call here, and a single Lua script on Redis. Time comes from the
caller (``CounterAdmission.now``), so both stores follow the injected clock.

The admission rule is LiteLLM's: a check admits while what is counted is *below* its limit —
a window's sum (settled usage plus the reservations of requests in flight) below the limit, live
slots below ``max_parallel``, spend plus in-flight reservations below the budget — and only then
adds this request's amount. So a request larger than a whole limit is admitted when its window is
empty, and the overshoot of any limit is bounded by what requests admitted below it add (see
docs/enforcement.md). A ``strict`` budget check also refuses when this request's worst case would
not fit.

Sliding windows. A window counter keeps one bucket per whole second. At time ``t`` it counts the
buckets ``floor(t) - window … floor(t)``: ``window + 1`` buckets covering between ``window`` and
``window + 1`` seconds of history. Every event of the exact interval ``(t - window, t]`` is
counted (no 2× burst at a minute boundary); an event is forgotten between ``window`` and
``window + 1`` seconds after it happened. ``retry_after`` is computed from the buckets.

In flight. Slots and reservations an admission takes are written down under its ``member`` (a
*record*), and settlement gives back exactly what the record holds and deletes it: a settlement
applied twice (a retry after a lost reply) changes nothing the second time. On Redis a record also
names the replica that owns it, so a dead replica's records are given back by the others.

Budget totals are never guessed: a spend key that does not exist (first use of a window, Redis
data lost, a fresh in-memory store) is reported as *missing* until the caller supplies the spend
of record from the database as a ``seed``; settlements add spend only to keys that exist.

Money is integer nano-dollars (1e-9 USD) in the store, Decimal everywhere else; ``to_nano`` and
``from_nano`` convert exactly (Redis' Lua numbers are doubles: exact up to 2**53 nano = $9M).
May import: ``errors`` only (stdlib otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Literal, Protocol

NANO = Decimal("0.000000001")
CheckKind = Literal["budget", "window", "slot", "missing", ""]
# Where an admission was counted, so its settlement goes back there: "lease" is a Redis store's
# quota lease (store/leases.py), settled in the process like "memory".
Via = Literal["memory", "redis", "open", "lease"]
# Slot and reservation counters live this long past their last use: far longer than any request,
# so only counters nobody uses any more expire (settlement, not expiry, gives amounts back).
COUNTER_TTL = 86400


class CounterStoreUnavailable(Exception):
    """The shared counter store could not be reached or answered with an error."""


def to_nano(amount: Decimal, *, round_up: bool = False) -> int:
    """Dollars → integer nano-dollars. Reservations round up (never under-reserve); spend rounds
    half-even (no drift over many additions)."""
    rounding = ROUND_CEILING if round_up else ROUND_HALF_EVEN
    return int(amount.quantize(NANO, rounding=rounding).scaleb(9))


def from_nano(nano: int) -> Decimal:
    return Decimal(nano).scaleb(-9)


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """One budget of one entity: refused when spend + the entity's reservations ≥ ``limit``
    (nano-dollars), and with ``strict`` also when they + the admission's ``cost`` > ``limit``.

    ``limit`` < 0 checks nothing: the spend key only has to exist (a soft budget's total). When
    ``spend_key`` is missing the store applies ``seed``, or without a seed reports the check as
    missing and admits nothing. ``expires`` (Unix seconds; ``None``: never) is when the total may
    be forgotten: its window's end plus a margin. Nothing here depends on one request, so a
    principal's checks are built once per window.
    """

    spend_key: str
    reserve_key: str
    limit: int
    strict: bool = False
    seed: int | None = None
    expires: float | None = None


@dataclass(frozen=True, slots=True)
class WindowCheck:
    """Refused when the sliding-window sum ≥ ``limit``; otherwise ``amount`` joins this second.

    ``group`` 0 is required; a check of an optional group ``g > 0`` (a fallback model group's
    per-model limit) drops the group instead of refusing, and none of its checks is applied.
    """

    key: str
    limit: int
    amount: int
    group: int = 0


@dataclass(frozen=True, slots=True)
class SlotCheck:
    """Refused (or its optional group dropped) when live slots ≥ ``limit``; otherwise takes one."""

    key: str
    limit: int
    group: int = 0


@dataclass(frozen=True, slots=True)
class Reservation:
    """``amount`` added to ``key`` while the request is in flight (its estimated cost)."""

    key: str
    amount: int


@dataclass(frozen=True, slots=True)
class CounterAdmission:
    now: float
    member: str  # unique per admission: names its record of slots and reservations
    budgets: tuple[BudgetCheck, ...] = ()
    windows: tuple[WindowCheck, ...] = ()
    slots: tuple[SlotCheck, ...] = ()
    reservations: tuple[Reservation, ...] = ()
    cost: int = 0  # this request's worst-case cost (nano-dollars), for strict budget checks
    window_seconds: int = 60


@dataclass(frozen=True, slots=True)
class AdmissionResult:
    """``admitted``, or the first failing check (``failed`` kind and ``index`` into its tuple).

    ``used`` holds, per window check, the window sum before this admission; ``current`` is the
    failing check's value (window sum, live slots, or spend in nano-dollars, with ``reserved``
    the budget's in-flight reservations); ``dropped`` the optional groups not admitted;
    ``missing`` the budget checks whose spend key needs a seed (``failed == "missing"``).
    """

    admitted: bool
    failed: CheckKind = ""
    index: int = -1
    current: int = 0
    reserved: int = 0
    retry_after: float = 0.0
    used: tuple[int, ...] = ()
    dropped: frozenset[int] = frozenset()
    missing: tuple[int, ...] = ()
    via: Via = "memory"


@dataclass(frozen=True, slots=True)
class WindowAdjust:
    """Settle a window: ``delta`` (actual − reserved, may be negative; floored at 0) goes to
    ``bucket`` while it is in the window; once it has left, only a positive ``delta`` is added, to
    the settling second (a long request's usage beyond its reservation still counts)."""

    key: str
    bucket: int
    delta: int


@dataclass(frozen=True, slots=True)
class SpendAdd:
    """Add ``amount`` nano-dollars to an existing spend total, forgotten at ``expires`` (``None``:
    kept for ever)."""

    key: str
    amount: int
    expires: float | None = None


@dataclass(frozen=True, slots=True)
class Settlement:
    """Give back the record of ``member`` and apply the corrections, once."""

    now: float
    member: str
    windows: tuple[WindowAdjust, ...] = ()
    spends: tuple[SpendAdd, ...] = ()
    window_seconds: int = 60
    via: Via = "memory"


MISSING = -1  # a spend total that did not exist (its addition was skipped)


class CounterStore(Protocol):
    async def admit(self, admission: CounterAdmission) -> AdmissionResult:
        """Evaluate every check; apply all of them or none. Raises ``CounterStoreUnavailable``."""
        ...

    async def settle(self, settlement: Settlement) -> tuple[int, ...]:
        """Apply a settlement; returns each spend total after its addition (``MISSING`` where the
        key did not exist), or ``()`` when the settlement had already been applied."""
        ...

    async def peek(self, keys: Sequence[str]) -> tuple[int | None, ...]:
        """The current values of counters (spend totals), ``None`` where missing."""
        ...

    async def close(self) -> None: ...


def ttl(expires: float | None, now: float) -> int:
    """Seconds until ``expires`` (at least 1), or 0 for never: what Redis' EXPIRE is given."""
    return 0 if expires is None else max(1, int(expires - now) + 1)


def window_retry_after(buckets: Sequence[tuple[int, int]], need: int, now: float, window: int) -> float:
    """Seconds until ``need`` units leave the window, given live ``(second, count)`` buckets.

    A bucket for second ``b`` stops being counted at ``b + window + 1``.
    """
    freed = 0
    for second, count in sorted(buckets):
        freed += count
        if freed >= need:
            return max(0.0, second + window + 1 - now)
    return float(window)
