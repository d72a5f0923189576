"""``LeasedCounterStore``: the Redis counter store with quota leases (``store/leases.py``) in front.

Admission first tries the replica's leases; a request they cover is admitted and later settled
without a Redis round trip. The others go to Redis as without leases. While there is traffic a
task runs one exchange every ``interval`` seconds (one ``EVALSHA`` of ``redis_lease_script.LEASE``):
it flushes local settlements and renews the leases. When Redis cannot be reached the exchange is
sent again, unchanged, before anything new (Redis applies each exchange once, by its sequence
number); local admissions go on only as far as the leases already held allow, and then
requests reach the Redis store, whose failure the caller (``resilient_counters``) handles.
May import: ``store.counters``, ``store.lease_counters``, ``store.leases``, ``store.redis_counters``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

from tollgate.background import cancel_and_wait
from tollgate.store.counters import AdmissionResult, CounterAdmission, CounterStoreUnavailable, Settlement
from tollgate.store.lease_counters import LEASE_SHARE, Exchange
from tollgate.store.leases import LeaseBook
from tollgate.store.redis_counters import RedisCounterStore

EXCHANGE_INTERVAL = 0.025  # seconds between exchanges while leases are held or wanted


class LeasedCounterStore:
    """See the module docstring. ``clock`` gives Unix seconds, as admissions carry them."""

    def __init__(
        self, redis_store: RedisCounterStore, *, interval: float = EXCHANGE_INTERVAL,
        share: int = LEASE_SHARE, clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis_store
        self._interval = interval
        self._clock = clock
        self.book = LeaseBook(share=share)
        self._task: asyncio.Task[None] | None = None
        self._wanted = asyncio.Event()
        self._unsent: Exchange | None = None
        self._connected = True  # the last exchange reached Redis
        self._exchanged = False  # an exchange has reached Redis (its sequence number is kept there)
        self._sending: asyncio.Future[bool] | None = None

    @property
    def lease(self) -> float:
        return self._redis.lease

    async def admit(self, admission: CounterAdmission) -> AdmissionResult:
        # Cut off from Redis, leases are not used: the request goes to Redis and its failure to
        # the caller, which knows the fail mode (and would otherwise think Redis were back).
        local = self.book.admit(admission) if self._connected else None
        if local is not None:
            return local
        result = await self._redis.admit(admission)
        if self.book.busy:
            self._start()
        return result

    async def settle(self, settlement: Settlement) -> tuple[int, ...]:
        if self.book.settle(settlement):
            return ()
        return await self._redis.settle(settlement)

    async def peek(self, keys: Sequence[str]) -> tuple[int | None, ...]:
        """Redis' totals, plus what this replica has settled and not yet sent."""
        values = await self._redis.peek(keys)
        book = self.book
        return tuple(
            None if value is None else value + book.pending_spend(key)
            for key, value in zip(keys, values, strict=True)
        )

    async def heartbeat(self, now: float) -> int:
        return await self._redis.heartbeat(now)

    async def ping(self) -> None:
        await self._redis.ping()

    async def exchange(self, *, final: bool = False) -> bool:
        """Send the exchange Redis has not acknowledged, if any, then a new one; ``False`` when
        Redis could not take them (the unacknowledged one is kept for the next call)."""
        if self._unsent is not None:
            if not await self._send(self._unsent):
                return False
            self._unsent = None
        exchange = self.book.take(self._clock(), final=final)
        # A replica that exchanged ends with a final one even if empty: it drops its sequence.
        if exchange.empty and not (final and self._exchanged):
            return True
        if not await self._send(exchange):
            self._unsent = exchange
            return False
        return True

    async def _send(self, exchange: Exchange) -> bool:
        try:
            reply = await self._redis.exchange(exchange, self.book.share)
        except CounterStoreUnavailable:
            self._connected = False
            return False
        self._connected = self._exchanged = True
        self.book.apply(exchange, reply)
        return True

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop())
        self._wanted.set()

    async def _loop(self) -> None:
        while True:
            if not self.book.busy and self._unsent is None:
                self._wanted.clear()
                await self._wanted.wait()
            await asyncio.sleep(self._interval)
            # Shielded: stopping waits for an exchange under way rather than cutting it short.
            self._sending = asyncio.ensure_future(self.exchange())
            with contextlib.suppress(Exception):  # an exchange must never end the loop
                await asyncio.shield(self._sending)
            self._sending = None

    async def close(self) -> None:
        """Stop exchanging, give every lease back and send what is owed, then close Redis."""
        await cancel_and_wait(self._task)
        self._task = None
        if self._sending is not None:
            with contextlib.suppress(Exception):
                await self._sending
        with contextlib.suppress(Exception):
            await self.exchange(final=True)
        await self._redis.close()
