"""Quota leases: the bookkeeping that lets one replica admit and settle most requests without a
Redis round trip, while every limit stays a limit across replicas.

A *lease* is quota a replica has already taken in Redis, in bulk, ahead of the requests that will
use it: units of a rate window in one second's bucket, parallel slots, or in-flight cost on an
entity's ``held:`` total. Redis counts leased quota as used, so what every replica admits —
leased or one by one — never adds up to more than a limit allows. A request is admitted locally
(``LeaseBook.admit``) only when every check of its ``CounterAdmission`` is covered by a lease with
room for it; otherwise it goes to Redis exactly as without leases, and the counters it needed are
noted as wanted. Locally admitted requests settle locally (``settle``): their window corrections
and spend wait in the book, and their slots and reservations go back to the leases.

Every ``exchange`` (``leased_counters`` runs one every few tens of milliseconds while there is
traffic) sends what waits — corrections, spend, in-flight cost that became spend, leases to give
back — and asks for new leases sized by the demand just seen. Redis grants a lease only while it
takes at most ``1/share`` of the counter's headroom (``redis_lease_script``), so near a limit
nothing is leased and every request is counted one by one, exactly as without leases; and a
counter is leased only once ``MIN_MISSES`` requests a second have asked for it.

What leases change (docs/enforcement.md, "Quota leases"): no limit is ever exceeded because of a
lease. Quota leased and not yet used is counted before it is used, so another replica can be
refused early by at most the unused leases — each at most ``1/share`` of the headroom it was
taken from; window leases go back within a second, idle slot and cost leases within
``IDLE_SECONDS``. Spend settled locally reaches Redis' totals at the next exchange.
May import: ``store.counters``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from tollgate.store.counters import AdmissionResult, CounterAdmission, Settlement

LEASE_SHARE = 16  # a lease takes at most this fraction (1/16) of a counter's headroom
MIN_MISSES = 8  # requests in one second asking for a counter before it is leased
IDLE_SECONDS = 1.0  # a counter no request used this long gives its leases back
FORGET_SECONDS = 10.0  # and is forgotten this long after its last use
BACKOFF_SECONDS = 1.0  # a refused grant is not asked again for this long
# Leases held this long with no local use while requests still go to Redis (their plans need a
# counter that is not leased, e.g. many quiet keys under one busy team) are given back and not
# asked for again for RETRY_SECONDS.
USELESS_SECONDS = 2.0
RETRY_SECONDS = 10.0
LOOKAHEAD = 0.06  # the next second's window lease is asked for this long before it starts
MARGIN = 1.25  # leases are sized for this much more than the demand seen


@dataclass(slots=True)
class WindowCounter:
    """A rate window this replica leases: per second, ``[left, granted]`` units of its bucket."""

    limit: int
    leases: dict[int, list[int]] = field(default_factory=dict)
    missed: dict[int, int] = field(default_factory=dict)  # second → units that went to Redis
    rate: int = 0  # units asked for in the last whole second, leased or not
    top: int = 0  # the largest amount one request asked for
    # For rate headers: the window's use at the last exchange (Redis' total less the units this
    # replica held leased and unused), and what local admissions have added since.
    base: int = 0
    consumed: int = 0
    backoff: float = 0.0
    last: float = 0.0  # the last request that went to Redis
    used_at: float = 0.0  # the last request admitted from a lease
    held_since: float = 0.0  # the first grant since the last request admitted from a lease


@dataclass(slots=True)
class PoolCounter:
    """Parallel slots, or an entity's in-flight cost (``held``), this replica leases.

    ``used`` counts what local requests hold, and for in-flight cost also ``spent``: settled cost
    not yet added to the spend totals, which keeps its place in the lease until the exchange that
    adds it. ``checks`` are the budgets (spend key, limit) grants of in-flight cost were checked
    against: only requests with those budgets may use it.
    """

    limit: int = 0
    checks: frozenset[tuple[str, int]] = frozenset()
    wants: frozenset[tuple[str, int]] = frozenset()  # the budgets the next grant is checked against
    granted: int = 0
    used: int = 0
    spent: int = 0
    peak: int = 0  # slots: most held at once; cost: reservations taken; since the last exchange
    missed: int = 0  # what went to Redis for want of room since the last exchange
    top: int = 0
    backoff: float = 0.0
    last: float = 0.0
    used_at: float = 0.0
    held_since: float = 0.0


@dataclass(frozen=True, slots=True)
class _Record:
    slots: tuple[PoolCounter, ...]
    held: tuple[tuple[PoolCounter, int], ...]
    owners: dict[str, PoolCounter]  # spend key → the in-flight cost lease it is paid from


@dataclass(slots=True)
class Exchange:
    """One exchange with Redis: what to flush and give back, and what to ask for (raw keys)."""

    now: float
    seq: int  # Redis applies an exchange once: a retry after a lost reply changes nothing
    final: bool = False
    window_seconds: int = 60
    corrections: list[tuple[str, int, int]] = field(default_factory=list)  # key, bucket, delta
    spends: list[tuple[str, int]] = field(default_factory=list)
    returns: list[tuple[str, int]] = field(default_factory=list)  # slot or held key, amount
    window_asks: list[tuple[str, int, int, int]] = field(default_factory=list)  # key, limit, second, ask
    slot_asks: list[tuple[str, int, int]] = field(default_factory=list)  # key, limit, ask
    held_asks: list[tuple[str, int, tuple[tuple[str, int], ...]]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.corrections or self.spends or self.returns or self.window_asks or self.slot_asks
            or self.held_asks
        )


class LeaseBook:
    """The leases of one replica and what its local admissions owe Redis. Synchronous: each call
    runs without yielding, so it is atomic within the event loop."""

    def __init__(self, *, share: int = LEASE_SHARE) -> None:
        self.share = share
        self.windows: dict[str, WindowCounter] = {}
        self.slots: dict[str, PoolCounter] = {}
        self.held: dict[str, PoolCounter] = {}
        self._records: dict[str, _Record] = {}
        self._corrections: dict[tuple[str, int], int] = {}
        self._spends: dict[str, int] = {}
        self._seq = 0
        self.window_seconds = 60
        # Requests of the current second that went to Redis, per counter not yet leased: a
        # counter joins the book (and the exchanges) at MIN_MISSES, so quiet keys cost nothing.
        self._misses: dict[str, int] = {}
        self._miss_second = -1

    @property
    def busy(self) -> bool:
        """Whether anything is leased, owed or wanted (an exchange loop has work)."""
        return bool(self.windows or self.slots or self.held or self._corrections or self._spends)

    def pending_spend(self, key: str) -> int:
        """Spend settled here and not yet added to Redis' total ``key``."""
        return self._spends.get(key, 0)

    def admit(self, admission: CounterAdmission) -> AdmissionResult | None:
        """Admit from leases, or ``None``: the admission must go to Redis (its counters noted)."""
        result = self._local(admission)
        if result is None:
            self._miss(admission)
        return result

    def _local(self, admission: CounterAdmission) -> AdmissionResult | None:
        now = admission.now
        second = int(now)
        found = []
        for check in admission.windows:
            window = self.windows.get(check.key)
            # A changed limit (an admin update) is asked for under the new one from Redis.
            if window is None or check.group or check.limit != window.limit:
                return None
            lease = window.leases.get(second)
            if lease is None or lease[0] < check.amount:
                return None
            found.append((window, lease))
        slots = []
        for slot_check in admission.slots:
            slot = self.slots.get(slot_check.key)
            if slot is None or slot_check.group or slot_check.limit != slot.limit:
                return None
            if slot.used >= slot.granted:
                return None
            slots.append(slot)
        owners: dict[str, PoolCounter] = {}
        for budget in admission.budgets:
            pool = self.held.get(budget.reserve_key)
            if pool is None or pool.used >= pool.granted or (
                (budget.spend_key, budget.limit) not in pool.checks
            ):
                return None
            owners[budget.spend_key] = pool
        held = []
        for reservation in admission.reservations:
            found_pool = self.held.get(reservation.key)
            if found_pool is None or found_pool.used + reservation.amount > found_pool.granted:
                return None
            held.append((found_pool, reservation.amount))
        used = []
        for (window, lease), check in zip(found, admission.windows, strict=True):
            used.append(window.base + window.consumed)
            window.consumed += check.amount
            lease[0] -= check.amount
            window.used_at, window.held_since = now, 0.0
        for slot in slots:
            slot.used += 1
            if slot.used > slot.peak:
                slot.peak = slot.used
            slot.used_at, slot.held_since = now, 0.0
        for pool, amount in held:
            pool.used += amount
            pool.peak += amount
        for pool in owners.values():
            pool.used_at, pool.held_since = now, 0.0
        self._records[admission.member] = _Record(tuple(slots), tuple(held), owners)
        return AdmissionResult(True, used=tuple(used), via="lease")

    def settle(self, settlement: Settlement) -> bool:
        """Settle a local admission here (``False``: not one of this book's)."""
        record = self._records.pop(settlement.member, None)
        if record is None:
            return False
        corrections = self._corrections
        for adjust in settlement.windows:
            where = (adjust.key, adjust.bucket)
            corrections[where] = corrections.get(where, 0) + adjust.delta
        for slot in record.slots:
            slot.used -= 1
        for pool, amount in record.held:
            pool.used -= amount
        paid: set[int] = set()
        spends = self._spends
        for spend in settlement.spends:
            spends[spend.key] = spends.get(spend.key, 0) + spend.amount
            owner = record.owners.get(spend.key)
            if owner is not None and id(owner) not in paid:  # an entity's totals share one lease
                paid.add(id(owner))
                owner.used += spend.amount
                owner.spent += spend.amount
        return True

    def _miss(self, admission: CounterAdmission) -> None:
        """Note the counters of an admission going to Redis, if every one of them can be leased."""
        if any(c.group for c in admission.windows) or any(c.group for c in admission.slots) or any(
            b.limit < 0 for b in admission.budgets
        ):
            return  # optional groups and soft-budget totals are always counted in Redis
        now = admission.now
        second = int(now)
        if second != self._miss_second:
            self._miss_second, self._misses = second, {}
        self.window_seconds = admission.window_seconds
        for check in admission.windows:
            window = self.windows.get(check.key)
            if window is None:
                if not self._wanted(check.key):
                    continue
                window = self.windows[check.key] = WindowCounter(check.limit)
            window.limit = check.limit
            window.missed[second] = window.missed.get(second, 0) + check.amount
            window.top = max(window.top, check.amount)
            window.last = now
        for slot_check in admission.slots:
            slot = self.slots.get(slot_check.key)
            if slot is None:
                if not self._wanted(slot_check.key):
                    continue
                slot = self.slots[slot_check.key] = PoolCounter()
            slot.limit = slot_check.limit
            slot.missed += 1
            slot.last = now
        cost = {r.key: r.amount for r in admission.reservations}
        checks: dict[str, list[tuple[str, int]]] = {}
        for budget in admission.budgets:
            checks.setdefault(budget.reserve_key, []).append((budget.spend_key, budget.limit))
        for key, wanted in checks.items():
            pool = self.held.get(key)
            if pool is None:
                if not self._wanted(key):
                    continue
                pool = self.held[key] = PoolCounter()
            pool.wants = frozenset(wanted)
            amount = cost.get(key, 0)
            pool.missed += amount
            pool.top = max(pool.top, amount)
            pool.last = now

    def _wanted(self, key: str) -> bool:
        """Count a request of this second that went to Redis for ``key``; true at the
        ``MIN_MISSES``th, when the counter joins the book."""
        count = self._misses.get(key, 0) + 1
        self._misses[key] = count
        return count >= MIN_MISSES

    def take(self, now: float, *, final: bool = False) -> Exchange:
        """What the next exchange sends: everything owed, leases to give back, leases to ask for.
        What it gives back leaves the book now: until Redis has taken the exchange (the caller
        sends it again until it has), Redis counts more than the book, never less.
        ``final``: give back every lease and ask for none (the replica is stopping)."""
        second = int(now)
        self._seq += 1
        exchange = Exchange(now, self._seq, final, self.window_seconds)
        for (key, bucket), delta in self._corrections.items():
            if delta:
                exchange.corrections.append((key, bucket, delta))
        self._corrections = {}
        exchange.spends = [(key, amount) for key, amount in self._spends.items() if amount]
        self._spends = {}
        for key, window in list(self.windows.items()):
            self._take_window(exchange, key, window, now, second, final)
        for key, slot in list(self.slots.items()):
            idle = final or _idle(slot, now)
            # Room for the most held at once lately, plus what had to go to Redis.
            want = 0 if idle else max(slot.peak, slot.used) + slot.missed + 2
            self._take_pool(exchange, self.slots, key, slot, want, now, final)
            if not idle and now >= slot.backoff and slot.granted < want:
                exchange.slot_asks.append((key, slot.limit, want - slot.granted))
        for key, pool in list(self.held.items()):
            idle = final or _idle(pool, now)
            # What is in flight, plus four exchanges' worth of new reservations.
            want = 0 if idle else pool.used - pool.spent + 4 * (pool.peak + pool.missed) + 2 * pool.top
            self._take_pool(exchange, self.held, key, pool, want, now, final)
            if not idle and now >= pool.backoff and pool.top and (
                2 * (pool.granted - pool.used) < want - pool.used
            ):
                exchange.held_asks.append((key, want - pool.granted, tuple(sorted(pool.wants))))
        return exchange

    def _take_window(
        self, exchange: Exchange, key: str, window: WindowCounter, now: float, second: int, final: bool
    ) -> None:
        for leased in sorted(window.leases):
            if leased < second or final:
                left, granted = window.leases.pop(leased)
                window.rate = granted - left + window.missed.pop(leased, 0)
                if left:
                    exchange.corrections.append((key, leased, -left))  # unused: given back
        for old in [s for s in window.missed if s < second]:  # seconds with no lease
            window.rate = window.missed.pop(old)
        if final or (now - max(window.last, window.used_at) > FORGET_SECONDS and not window.leases):
            del self.windows[key]
            return
        if now < window.backoff or _idle(window, now):
            return
        elapsed = now - second
        current = window.leases.get(second, [0, 0])
        seen = current[1] - current[0] + window.missed.get(second, 0)
        rate = max(window.rate, seen / max(elapsed, 0.05))
        floor = 2 * window.top
        if elapsed < 1 - LOOKAHEAD:
            need = math.ceil(rate * (1 - elapsed) * MARGIN) - current[0]
            if need > 0:
                exchange.window_asks.append((key, window.limit, second, max(need, floor)))
        else:
            ahead = window.leases.get(second + 1, [0, 0])
            need = math.ceil(rate * MARGIN) - ahead[0]
            if need > 0:
                exchange.window_asks.append((key, window.limit, second + 1, max(need, floor)))

    def _take_pool(
        self, exchange: Exchange, pools: dict[str, PoolCounter], key: str, pool: PoolCounter, want: int,
        now: float, final: bool,
    ) -> None:
        spent = pool.spent
        free = pool.granted - pool.used
        give = max(0, free - want) if free > 2 * want or final else 0
        # After a sweep gave this replica's leases back it holds nothing in Redis (granted 0).
        back = min(spent + give, max(pool.granted, 0))
        if spent or back:
            pool.granted -= back
            pool.used -= spent
            pool.spent = 0
            if back:
                exchange.returns.append((key, back))
        pool.peak, pool.missed = pool.used, 0
        quiet = now - max(pool.last, pool.used_at) > FORGET_SECONDS
        if final or (quiet and not pool.granted and not pool.used):
            del pools[key]

    def apply(self, exchange: Exchange, reply: list[int]) -> None:
        """Take in Redis' answer to ``exchange``: the grants, and whether this replica's leases
        were given back by another replica's sweep (then it holds none). A reply of ``[2]`` says
        the exchange had already been applied (its first reply was lost): its grants are not
        known, so none is used (they stay counted in Redis: windows for a minute, slots and cost
        until this replica stops)."""
        now = exchange.now
        if reply[0] == 2:
            return
        if reply[0] == 1:
            for pool in (*self.slots.values(), *self.held.values()):
                pool.granted = 0
        at = 1
        for key, _, second, _ in exchange.window_asks:
            got, total = reply[at], reply[at + 1]
            at += 2
            window = self.windows.get(key)
            if window is None:
                continue
            window.base = total - sum(lease[0] for lease in window.leases.values())
            window.consumed = 0
            if got:
                window.held_since = window.held_since or now
                lease = window.leases.setdefault(second, [0, 0])
                lease[0] += got
                lease[1] += got
            else:
                window.backoff = now + BACKOFF_SECONDS
        for key, _, _ in exchange.slot_asks:
            _grant(self.slots.get(key), reply[at], now, frozenset())
            at += 1
        for key, _, checks in exchange.held_asks:
            _grant(self.held.get(key), reply[at], now, frozenset(checks))
            at += 1


def _idle(counter: WindowCounter | PoolCounter, now: float) -> bool:
    """Whether a counter's leases should go back: no request at all for ``IDLE_SECONDS``, or
    leases held for ``USELESS_SECONDS`` that no request could use while requests kept going to
    Redis (then they are not asked for again for ``RETRY_SECONDS``)."""
    if now - max(counter.last, counter.used_at) > IDLE_SECONDS:
        counter.held_since = 0.0
        return True
    if counter.held_since and now - counter.held_since > USELESS_SECONDS:
        counter.backoff = now + RETRY_SECONDS
        counter.held_since = 0.0
        return True
    return False


def _grant(pool: PoolCounter | None, got: int, now: float, checks: frozenset[tuple[str, int]]) -> None:
    if pool is None:
        return
    if got:
        # Budgets checked by an earlier grant still hold for what is left of it; once nothing
        # is, only this grant's count (a new window's total, a changed limit).
        pool.checks = pool.checks | checks if pool.granted > 0 else checks
        pool.granted += got
        pool.held_since = pool.held_since or now
    else:
        pool.backoff = now + BACKOFF_SECONDS
