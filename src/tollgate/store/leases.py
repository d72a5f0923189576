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
May import: ``store.counters``, ``store.lease_counters``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tollgate.store.counters import AdmissionResult, CounterAdmission, Settlement
from tollgate.store.lease_counters import (
    LEASE_SHARE,
    MIN_MISSES,
    Exchange,
    PoolCounter,
    WindowCounter,
    idle,
)

C = TypeVar("C", WindowCounter, PoolCounter)


@dataclass(frozen=True, slots=True)
class _Record:
    slots: tuple[PoolCounter, ...]
    held: tuple[tuple[PoolCounter, int], ...]
    owners: dict[str, PoolCounter]  # spend key → the in-flight cost lease it is paid from


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
            window = self._joined(self.windows, check.key, WindowCounter)
            if window is None:
                continue
            window.limit = check.limit
            window.missed[second] = window.missed.get(second, 0) + check.amount
            window.top = max(window.top, check.amount)
            window.last = now
        for slot_check in admission.slots:
            slot = self._joined(self.slots, slot_check.key, PoolCounter)
            if slot is None:
                continue
            slot.limit = slot_check.limit
            slot.missed += 1
            slot.last = now
        cost = {r.key: r.amount for r in admission.reservations}
        checks: dict[str, list[tuple[str, int]]] = {}
        for budget in admission.budgets:
            checks.setdefault(budget.reserve_key, []).append((budget.spend_key, budget.limit))
        for key, wanted in checks.items():
            pool = self._joined(self.held, key, PoolCounter)
            if pool is None:
                continue
            pool.wants = frozenset(wanted)
            amount = cost.get(key, 0)
            pool.missed += amount
            pool.top = max(pool.top, amount)
            pool.last = now

    def _joined(self, table: dict[str, C], key: str, make: Callable[[], C]) -> C | None:
        """The book's counter for ``key``; one not yet in the book counts a request of this
        second that went to Redis, and joins the book (``make``) at the ``MIN_MISSES``th."""
        found = table.get(key)
        if found is None:
            count = self._misses[key] = self._misses.get(key, 0) + 1
            if count >= MIN_MISSES:
                found = table[key] = make()
        return found

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
            window.retire(exchange, key, second, final)
            if final or window.forgotten(now):
                del self.windows[key]
            else:
                window.ask(exchange, key, now, second)
        for key, slot in list(self.slots.items()):
            stop = final or idle(slot, now)
            # Room for the most held at once lately, plus what had to go to Redis.
            want = 0 if stop else max(slot.peak, slot.used) + slot.missed + 2
            slot.give_back(exchange, key, want, final)
            if final or slot.forgotten(now):
                del self.slots[key]
            elif not stop and now >= slot.backoff and slot.granted < want:
                exchange.slot_asks.append((key, slot.limit, want - slot.granted))
        for key, pool in list(self.held.items()):
            stop = final or idle(pool, now)
            # What is in flight, plus four exchanges' worth of new reservations.
            want = 0 if stop else pool.used - pool.spent + 4 * (pool.peak + pool.missed) + 2 * pool.top
            pool.give_back(exchange, key, want, final)
            if final or pool.forgotten(now):
                del self.held[key]
            elif not stop and now >= pool.backoff and pool.top and (
                2 * (pool.granted - pool.used) < want - pool.used
            ):
                exchange.held_asks.append((key, want - pool.granted, tuple(sorted(pool.wants))))
        return exchange

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
            if window is not None:
                window.grant(second, got, total, now)
        for key, _, _ in exchange.slot_asks:
            slot = self.slots.get(key)
            if slot is not None:
                slot.grant(reply[at], now)
            at += 1
        for key, _, checks in exchange.held_asks:
            held = self.held.get(key)
            if held is not None:
                held.grant(reply[at], now, frozenset(checks))
            at += 1
