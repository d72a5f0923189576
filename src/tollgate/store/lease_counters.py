"""One counter a replica leases (``store/leases.py``): its state, when its leases go back, and what
it gives back and asks for at each exchange with Redis (``Exchange``). The sizes and delays that
govern leasing are here.
May import: nothing from tollgate (stdlib only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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


@dataclass(slots=True)
class WindowCounter:
    """A rate window this replica leases: per second, ``[left, granted]`` units of its bucket."""

    limit: int = 0
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

    def retire(self, exchange: Exchange, key: str, second: int, final: bool) -> None:
        """Give back the unused units of the leases of seconds that have passed (all, if
        ``final``), and keep the demand of the last whole second as ``rate``."""
        for leased in sorted(self.leases):
            if leased < second or final:
                left, granted = self.leases.pop(leased)
                self.rate = granted - left + self.missed.pop(leased, 0)
                if left:
                    exchange.corrections.append((key, leased, -left))
        for old in [s for s in self.missed if s < second]:  # seconds with no lease
            self.rate = self.missed.pop(old)

    def forgotten(self, now: float) -> bool:
        return now - max(self.last, self.used_at) > FORGET_SECONDS and not self.leases

    def ask(self, exchange: Exchange, key: str, now: float, second: int) -> None:
        """Ask for this second's lease to last the second at the demand seen, or, in its last
        ``LOOKAHEAD``, for the next second's."""
        if now < self.backoff or idle(self, now):
            return
        elapsed = now - second
        current = self.leases.get(second, [0, 0])
        seen = current[1] - current[0] + self.missed.get(second, 0)
        rate = max(self.rate, seen / max(elapsed, 0.05))
        floor = 2 * self.top
        if elapsed < 1 - LOOKAHEAD:
            need = math.ceil(rate * (1 - elapsed) * MARGIN) - current[0]
            if need > 0:
                exchange.window_asks.append((key, self.limit, second, max(need, floor)))
        else:
            ahead = self.leases.get(second + 1, [0, 0])
            need = math.ceil(rate * MARGIN) - ahead[0]
            if need > 0:
                exchange.window_asks.append((key, self.limit, second + 1, max(need, floor)))

    def grant(self, second: int, got: int, total: int, now: float) -> None:
        """Redis' answer to an ask: ``got`` units for ``second``, its total ``total`` before."""
        self.base = total - sum(lease[0] for lease in self.leases.values())
        self.consumed = 0
        if got:
            self.held_since = self.held_since or now
            lease = self.leases.setdefault(second, [0, 0])
            lease[0] += got
            lease[1] += got
        else:
            self.backoff = now + BACKOFF_SECONDS


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

    def give_back(self, exchange: Exchange, key: str, want: int, final: bool) -> None:
        """Send the settled cost (it leaves the lease as it joins the spend totals) and give back
        free units beyond twice ``want`` (all, if ``final``)."""
        spent = self.spent
        free = self.granted - self.used
        give = max(0, free - want) if free > 2 * want or final else 0
        # After a sweep gave this replica's leases back it holds nothing in Redis (granted 0).
        back = min(spent + give, max(self.granted, 0))
        if spent or back:
            self.granted -= back
            self.used -= spent
            self.spent = 0
            if back:
                exchange.returns.append((key, back))
        self.peak, self.missed = self.used, 0

    def forgotten(self, now: float) -> bool:
        quiet = now - max(self.last, self.used_at) > FORGET_SECONDS
        return quiet and not self.granted and not self.used

    def grant(self, got: int, now: float, checks: frozenset[tuple[str, int]] = frozenset()) -> None:
        """Redis' answer to an ask: ``got`` more (0: refused), checked against ``checks``."""
        if got:
            # Budgets checked by an earlier grant still hold for what is left of it; once nothing
            # is, only this grant's count (a new window's total, a changed limit).
            self.checks = self.checks | checks if self.granted > 0 else checks
            self.granted += got
            self.held_since = self.held_since or now
        else:
            self.backoff = now + BACKOFF_SECONDS


def idle(counter: WindowCounter | PoolCounter, now: float) -> bool:
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
