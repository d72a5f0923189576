"""``ResilientCounterStore``: Redis first, and a gateway that keeps serving — without leaking or
forgetting — when Redis is down.

On a Redis failure ``redis_fail_mode`` decides: ``fallback`` (default) admits with per-process
counters, ``fail_open`` checks only budgets (per process) and counts no rate limit,
``fail_closed`` raises ``CounterStoreUnavailable`` (a 503). The per-process store's budget totals
are seeded from the database like Redis' (``store/counters.py``), so a spent budget stays spent
through an outage; it is emptied when Redis is back, as its totals are then stale.

Nothing Redis should hear about is dropped: a settlement Redis did not acknowledge is queued and
sent again (settlements are idempotent, so a lost reply is harmless), and an admission whose
reply was lost is released the same way (it may have been applied). ``tick`` — run every few
seconds by ``start``'s task, or by a test — renews this replica's lease, gives back dead replicas'
slots and reservations, and sends the queue.
May import: ``store.counters``, ``store.memory_counters``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Literal, Protocol

from tollgate.background import cancel_and_wait
from tollgate.store.counters import (
    AdmissionResult,
    CounterAdmission,
    CounterStoreUnavailable,
    Settlement,
)
from tollgate.store.memory_counters import MemoryCounterStore

FailMode = Literal["fallback", "fail_open", "fail_closed"]
MAX_PENDING = 100_000  # settlements waiting for Redis; beyond this the oldest are dropped (warned)


class SharedCounters(Protocol):
    """The Redis store (``redis_counters``), with or without quota leases (``leased_counters``)."""

    @property
    def lease(self) -> float: ...
    async def admit(self, admission: CounterAdmission) -> AdmissionResult: ...
    async def settle(self, settlement: Settlement) -> tuple[int, ...]: ...
    async def peek(self, keys: Sequence[str]) -> tuple[int | None, ...]: ...
    async def heartbeat(self, now: float) -> int: ...
    async def ping(self) -> None: ...
    async def close(self) -> None: ...


class ResilientCounterStore:
    """See the module docstring. ``healthy`` feeds readiness; ``clock`` (monotonic) schedules
    probes; ``wall`` (Unix seconds) dates leases, which replicas compare with each other."""

    def __init__(
        self,
        redis_store: SharedCounters,
        memory_store: MemoryCounterStore,
        mode: FailMode = "fallback",
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        retry_interval: float = 5.0,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._redis = redis_store
        self._memory = memory_store
        self._mode = mode
        self._clock = clock
        self._wall = wall
        self._retry_interval = retry_interval
        self._warn = warn or (lambda message: None)
        self._healthy = True
        self._next_probe = 0.0
        self._pending: deque[Settlement] = deque()
        self._task: asyncio.Task[None] | None = None

    @property
    def healthy(self) -> bool:
        return self._healthy

    @property
    def pending(self) -> int:
        """Settlements waiting to reach Redis."""
        return len(self._pending)

    async def health_check(self) -> tuple[bool, str]:
        """Readiness: ping Redis (so an idle replica notices an outage too) and describe the mode.

        Only ``fail_closed`` makes the replica unready: in ``fallback``/``fail_open`` it keeps
        serving, and taking it out of the load balancer would turn a Redis outage into a full one.
        """
        try:
            await self._redis.ping()
        except CounterStoreUnavailable as exc:
            self._mark_down(exc)
        else:
            self._mark_up()
        if self._healthy:
            return True, "connected"
        detail = {
            "fallback": "redis unavailable: per-process counters (redis_fail_mode=fallback)",
            "fail_open": "redis unavailable: budgets per process, rate limits not enforced "
            "(redis_fail_mode=fail_open)",
            "fail_closed": "redis unavailable: counted requests refused (redis_fail_mode=fail_closed)",
        }[self._mode]
        return self._mode != "fail_closed", detail

    async def admit(self, admission: CounterAdmission) -> AdmissionResult:
        if self._use_redis():
            try:
                result = await self._redis.admit(admission)
            except CounterStoreUnavailable as exc:
                self._mark_down(exc)
                # The script may have run before the reply was lost: release whatever it took.
                self._queue(Settlement(admission.now, admission.member, via="redis"))
            else:
                self._mark_up()
                return result
        if self._mode == "fail_closed":
            raise CounterStoreUnavailable("redis counter store is unavailable (redis_fail_mode=fail_closed)")
        if self._mode == "fail_open":
            budgets_only = replace(admission, windows=(), slots=())
            result = await self._memory.admit(budgets_only)
            used = tuple(0 for _ in admission.windows)
            return replace(result, used=used, via="open")
        return replace(await self._memory.admit(admission), via="memory")

    async def settle(self, settlement: Settlement) -> tuple[int, ...]:
        if settlement.via == "lease":
            # Settled in this process from a quota lease: it says nothing of Redis' health.
            return await self._redis.settle(settlement)
        if settlement.via == "open":
            return await self._memory.settle(replace(settlement, windows=()))
        if settlement.via == "memory":
            return await self._memory.settle(settlement)
        try:
            totals = await self._redis.settle(settlement)
        except CounterStoreUnavailable as exc:
            self._mark_down(exc)
            self._queue(settlement)
            return ()
        self._mark_up()
        return totals

    async def peek(self, keys: Sequence[str]) -> tuple[int | None, ...]:
        try:
            return await self._redis.peek(keys)
        except CounterStoreUnavailable:
            return await self._memory.peek(keys)

    async def tick(self) -> None:
        """Renew the lease, give back dead replicas' records, send queued settlements."""
        try:
            swept = await self._redis.heartbeat(self._wall())
        except CounterStoreUnavailable as exc:
            self._mark_down(exc)
            return
        self._mark_up()
        if swept:
            self._warn(f"gave back {swept} in-flight admissions of replicas whose lease lapsed")
        while self._pending:
            settlement = self._pending[0]
            try:
                await self._redis.settle(settlement)
            except CounterStoreUnavailable as exc:
                self._mark_down(exc)
                return
            self._pending.popleft()

    async def start(self) -> None:
        """Run ``tick`` every third of the lease until ``close``."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        interval = self._redis.lease / 3
        while True:
            with contextlib.suppress(Exception):  # a tick must never end the loop
                await self.tick()
            await asyncio.sleep(interval)

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self._pending:
            with contextlib.suppress(Exception):
                await self.tick()  # one last chance for queued settlements
        await self._redis.close()
        await self._memory.close()

    def _queue(self, settlement: Settlement) -> None:
        if len(self._pending) >= MAX_PENDING:
            self._pending.popleft()
            self._warn("too many settlements waiting for Redis: the oldest was dropped")
        self._pending.append(settlement)

    def _use_redis(self) -> bool:
        if self._healthy:
            return True
        now = self._clock()
        if now >= self._next_probe:
            self._next_probe = now + self._retry_interval
            return True
        return False

    def _mark_down(self, exc: Exception) -> None:
        if self._healthy:
            self._warn(
                f"REDIS COUNTER STORE UNAVAILABLE ({exc}); redis_fail_mode={self._mode}: "
                + {
                    "fallback": "limits and budgets now hold per process only",
                    "fail_open": "budgets hold per process, rate limits are not enforced",
                    "fail_closed": "requests that need counters are refused",
                }[self._mode]
            )
        self._healthy = False
        self._next_probe = self._clock() + self._retry_interval

    def _mark_up(self) -> None:
        if not self._healthy:
            self._warn("redis counter store recovered; shared limits are enforced again")
            # The per-process totals counted during the outage are stale from now on.
            self._memory.reset()
        self._healthy = True
