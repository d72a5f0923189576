"""``RedisCounterStore``: the ``CounterStore`` shared by every gateway replica.

One admission is one ``EVALSHA`` of ``redis_scripts.ADMIT`` and one settlement one ``EVALSHA`` of
``SETTLE`` (``EVAL`` once after a ``SCRIPT FLUSH``), sent on the process's one pipelined connection
(``redis_wire.RedisWire``).
Each store instance is one *owner* (a random id per process): the records of what its
admissions hold are filed under it, and its lease in ``replicas`` is renewed by each admission
and by ``heartbeat``. A heartbeat also gives back the records of owners whose lease has lapsed (a
replica killed, or cut off from Redis longer than the lease), so their slots and reservations
return within ``lease`` seconds plus one heartbeat interval.
May import: ``store.counters``, ``store.lease_counters``, ``store.redis_scripts``,
``store.redis_lease_script``, ``store.redis_wire``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import hiredis

from tollgate.store.counters import (
    AdmissionResult,
    CheckKind,
    CounterAdmission,
    CounterStoreUnavailable,
    Settlement,
    ttl,
    window_retry_after,
)
from tollgate.store.lease_counters import Exchange
from tollgate.store.redis_lease_script import LEASE
from tollgate.store.redis_scripts import ADMIT, HEARTBEAT, SETTLE
from tollgate.store.redis_wire import RedisWire, Script, WireError

DEFAULT_LEASE = 15.0  # seconds a replica's slots outlive its last sign of life
SWEPT_RECORD_TTL = 3600  # a dead owner's given-back records still accept late spend this long
_KINDS: dict[str, CheckKind] = {"budget": "budget", "window": "window", "slot": "slot", "missing": "missing"}


class RedisCounterStore:
    """Counters in Redis. Every Redis or socket failure surfaces as ``CounterStoreUnavailable``."""

    def __init__(
        self, wire: RedisWire, *, prefix: str = "tollgate", lease: float = DEFAULT_LEASE,
        owner: str | None = None,
    ) -> None:
        self._wire = wire
        self._tag = "{" + prefix + "}:"
        self._windows = self._tag + "v2:"  # the window hashes' layout (redis_scripts), versioned
        self.owner = owner or os.urandom(8).hex()
        self.lease = lease
        self._replicas = self._tag + "replicas"
        self._record = self._tag + "i:" + self.owner
        self._admit = Script(ADMIT)
        self._settle = Script(SETTLE)
        self._heartbeat = Script(HEARTBEAT)
        self._lease = Script(LEASE)
        self._sequences = self._tag + "lease-seq"

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "tollgate", timeout: float = 0.5, lease: float = DEFAULT_LEASE
    ) -> RedisCounterStore:
        """A store with short timeouts: a stuck Redis must not stall admissions."""
        return cls(RedisWire(url, timeout=timeout, connect_timeout=timeout), prefix=prefix, lease=lease)

    async def admit(self, admission: CounterAdmission) -> AdmissionResult:
        tag, windows = self._tag, self._windows
        keys: list[str] = [self._replicas, self._record]
        now = admission.now
        args: list[Any] = [
            repr(now), admission.window_seconds, self.owner, admission.member, repr(self.lease),
            admission.cost, len(admission.budgets), len(admission.windows), len(admission.slots),
            len(admission.reservations),
        ]
        for budget in admission.budgets:
            keys += (tag + budget.spend_key, tag + budget.reserve_key)
            seed = budget.seed if budget.seed is not None else -1
            args += (budget.limit, 1 if budget.strict else 0, seed, ttl(budget.expires, now))
        for window in admission.windows:
            keys.append(windows + window.key)
            args += (window.limit, window.amount, window.group)
        for slot in admission.slots:
            keys.append(tag + slot.key)
            args += (slot.limit, slot.group)
        for reservation in admission.reservations:
            keys.append(tag + reservation.key)
            args.append(reservation.amount)
        reply = await self._run(self._admit, keys, args)
        ok, kind, index = int(reply[0]), _KINDS.get(_text(reply[1]), ""), int(reply[2])
        current, reserved = int(reply[3]), int(reply[4])
        if ok == 1:
            count = int(reply[5])
            dropped = frozenset(int(v) for v in reply[6 : 6 + count])
            used = tuple(int(v) for v in reply[6 + count :])
            return AdmissionResult(True, used=used, dropped=dropped, via="redis")
        rest = [int(v) for v in reply[5:]]
        if ok == 2:
            return AdmissionResult(False, "missing", missing=tuple(rest), via="redis")
        retry = 0.0
        if kind == "window":
            window = admission.windows[index]
            buckets = list(zip(rest[0::2], rest[1::2], strict=True))
            need = current - window.limit + 1
            retry = window_retry_after(buckets, need, admission.now, admission.window_seconds)
        elif kind == "slot":
            retry = 1.0
        return AdmissionResult(False, kind, index, current, reserved, retry, via="redis")

    async def settle(self, settlement: Settlement) -> tuple[int, ...]:
        tag, windows = self._tag, self._windows
        keys: list[str] = [self._record]
        args: list[Any] = [
            repr(settlement.now), settlement.window_seconds, settlement.member,
            len(settlement.windows), len(settlement.spends),
        ]
        for adjust in settlement.windows:
            keys.append(windows + adjust.key)
            args += (adjust.bucket, adjust.delta)
        for spend in settlement.spends:
            keys.append(tag + spend.key)
            args.append(spend.amount)
        reply = await self._run(self._settle, keys, args)
        return tuple(int(v) for v in reply[1:])

    async def exchange(self, exchange: Exchange, share: int) -> list[int]:
        """One exchange of this replica's quota leases (``store/leases.py``); the raw reply."""
        tag, windows = self._tag, self._windows
        args: list[Any] = [
            repr(exchange.now), exchange.window_seconds, self.owner, "lease", repr(self.lease), share,
            exchange.seq, 1 if exchange.final else 0, len(exchange.corrections), len(exchange.spends),
            len(exchange.returns), len(exchange.window_asks), len(exchange.slot_asks),
            len(exchange.held_asks),
        ]
        for key, bucket, delta in exchange.corrections:
            args += (windows + key, bucket, delta)
        for key, amount in exchange.spends:
            args += (tag + key, amount)
        for key, amount in exchange.returns:
            args += (tag + key, amount)
        for key, limit, second, ask in exchange.window_asks:
            args += (windows + key, limit, second, ask)
        for key, limit, ask in exchange.slot_asks:
            args += (tag + key, limit, ask)
        for key, ask, checks in exchange.held_asks:
            args += (tag + key, ask, len(checks))
            for spend_key, limit in checks:
                args += (tag + spend_key, limit)
        reply = await self._run(self._lease, [self._replicas, self._record, self._sequences], args)
        return [int(v) for v in reply]

    async def heartbeat(self, now: float) -> int:
        """Renew this replica's lease and give back the records of dead ones; returns how many."""
        reply = await self._run(
            self._heartbeat, [self._replicas],
            [self.owner, repr(now), repr(self.lease), self._tag + "i:", SWEPT_RECORD_TTL],
        )
        return int(reply)

    async def peek(self, keys: Sequence[str]) -> tuple[int | None, ...]:
        if not keys:
            return ()
        values = await self._call("MGET", *(self._tag + key for key in keys))
        return tuple(int(v) if v is not None else None for v in values)

    async def ping(self) -> None:
        """Raise ``CounterStoreUnavailable`` unless Redis answers a PING."""
        await self._call("PING")

    async def close(self) -> None:
        with contextlib.suppress(OSError):
            await self._wire.close()

    async def _call(self, *args: Any) -> Any:
        try:
            return await self._wire.call(*args)
        except (WireError, OSError, hiredis.ReplyError) as exc:
            raise CounterStoreUnavailable(f"redis counter store: {type(exc).__name__}: {exc}") from exc

    async def _run(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        try:
            reply = await self._wire.script(script, keys, args)
        except (WireError, OSError, hiredis.ReplyError) as exc:
            raise CounterStoreUnavailable(f"redis counter store: {type(exc).__name__}: {exc}") from exc
        if not isinstance(reply, list | int):
            raise CounterStoreUnavailable(f"redis counter store: unexpected script reply {reply!r}")
        return reply


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
