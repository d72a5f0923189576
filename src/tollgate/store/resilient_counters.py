"""``CounterStore`` on Redis, shared by every gateway replica; and ``ResilientCounterStore``, which
keeps the gateway serving when Redis is down.

One admission is one ``EVALSHA`` of ``_ADMIT`` and one settlement one ``EVALSHA`` of ``_SETTLE``
(redis-py's registered scripts fall back to ``EVAL`` once after a ``SCRIPT FLUSH``). The scripts
implement exactly ``counters.MemoryCounterStore``'s semantics; the module docstring there
describes the sliding window. Layout: windows are hashes ``second → count`` (expire after
``window + 2`` s), slots are sorted sets ``member → lease expiry``, reservations and spend totals
are integer strings in nano-dollars. Every key is ``{prefix}:…``: the hash tag puts all counters
of a deployment in one cluster slot, which a multi-key all-or-nothing script requires (across
entities: key, team, org, proxy), at the cost of one shard serving all counters.
May import: ``store.counters``, ``config``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tollgate.store.counters import (
    AdmissionResult,
    CounterAdmission,
    CounterStore,
    CounterStoreUnavailable,
    Settlement,
    window_retry_after,
)

FailMode = Literal["fallback", "fail_open", "fail_closed"]

_ADMIT = """
local now = tonumber(ARGV[1])
local second = math.floor(now)
local window = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local member = ARGV[4]
local nb, nw, ns, nr = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local oldest = second - window
local k, a = 1, 9
for i = 1, nb do
  local limit, amount = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local spent = tonumber(redis.call('GET', KEYS[k]) or '0')
  local current = spent + tonumber(redis.call('GET', KEYS[k + 1]) or '0')
  if current >= limit or current + amount > limit then
    return {0, 'budget', i - 1, current}
  end
  k, a = k + 2, a + 2
end
local used = {}
for i = 1, nw do
  local limit, amount = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local flat = redis.call('HGETALL', KEYS[k])
  local total, stale, live = 0, {}, {}
  for j = 1, #flat, 2 do
    local b = tonumber(flat[j])
    if b < oldest then
      stale[#stale + 1] = flat[j]
    else
      local c = tonumber(flat[j + 1])
      total = total + c
      live[#live + 1] = b
      live[#live + 1] = c
    end
  end
  if #stale > 0 then redis.call('HDEL', KEYS[k], unpack(stale)) end
  if total + amount > limit then
    local out = {0, 'window', i - 1, total}
    for j = 1, #live do out[#out + 1] = live[j] end
    return out
  end
  used[i] = total
  k, a = k + 1, a + 2
end
for i = 1, ns do
  local limit = tonumber(ARGV[a])
  redis.call('ZREMRANGEBYSCORE', KEYS[k + i - 1], '-inf', now)
  local live = redis.call('ZCARD', KEYS[k + i - 1])
  if live + 1 > limit then return {0, 'slot', i - 1, live} end
  a = a + 1
end
k, a = nb * 2 + 1, 9 + nb * 2
for i = 1, nw do
  redis.call('HINCRBY', KEYS[k], second, ARGV[a + 1])
  redis.call('EXPIRE', KEYS[k], window + 2)
  k, a = k + 1, a + 2
end
for i = 1, ns do
  redis.call('ZADD', KEYS[k], now + lease, member)
  redis.call('EXPIRE', KEYS[k], math.ceil(lease) + 1)
  k = k + 1
end
a = a + ns
for i = 1, nr do
  redis.call('INCRBY', KEYS[k], ARGV[a])
  redis.call('EXPIRE', KEYS[k], ARGV[a + 1])
  k, a = k + 1, a + 2
end
local out = {1, '', -1, 0}
for i = 1, nw do out[#out + 1] = used[i] end
return out
"""

_SETTLE = """
local now = tonumber(ARGV[1])
local oldest = math.floor(now) - tonumber(ARGV[2])
local member = ARGV[3]
local nw, ns, nr, np = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local k, a = 1, 8
for i = 1, nw do
  local bucket, delta = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  if bucket >= oldest and redis.call('HEXISTS', KEYS[k], ARGV[a]) == 1 then
    if redis.call('HINCRBY', KEYS[k], ARGV[a], delta) < 0 then redis.call('HSET', KEYS[k], ARGV[a], 0) end
  end
  k, a = k + 1, a + 2
end
for i = 1, ns do
  redis.call('ZREM', KEYS[k], member)
  k = k + 1
end
for i = 1, nr do
  if redis.call('DECRBY', KEYS[k], ARGV[a]) <= 0 then redis.call('DEL', KEYS[k]) end
  k, a = k + 1, a + 1
end
local out = {}
for i = 1, np do
  out[#out + 1] = redis.call('INCRBY', KEYS[k], ARGV[a])
  local ttl = tonumber(ARGV[a + 1])
  if ttl > 0 then redis.call('EXPIRE', KEYS[k], ttl) end
  k, a = k + 1, a + 2
end
return out
"""


class RedisCounterStore:
    """Counters in Redis. Every Redis or socket failure surfaces as ``CounterStoreUnavailable``."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "tollgate") -> None:
        self._client = client
        self._tag = "{" + prefix + "}:"
        self._admit = client.register_script(_ADMIT)
        self._settle = client.register_script(_SETTLE)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = "tollgate", timeout: float = 0.5) -> RedisCounterStore:
        """A store with short socket timeouts: a stuck Redis must not stall admissions."""
        client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=False
        )
        return cls(client, prefix=prefix)

    async def admit(self, admission: CounterAdmission) -> AdmissionResult:
        tag = self._tag
        keys: list[str] = []
        args: list[Any] = [
            repr(admission.now), admission.window_seconds, repr(admission.slot_lease), admission.member,
            len(admission.budgets), len(admission.windows), len(admission.slots), len(admission.reservations),
        ]
        for budget in admission.budgets:
            keys += (tag + budget.spend_key, tag + budget.reserve_key)
            args += (budget.limit, budget.amount)
        for window in admission.windows:
            keys.append(tag + window.key)
            args += (window.limit, window.amount)
        for slot in admission.slots:
            keys.append(tag + slot.key)
            args.append(slot.limit)
        for reservation in admission.reservations:
            keys.append(tag + reservation.key)
            args += (reservation.amount, reservation.ttl)
        reply = await self._run(self._admit, keys, args)
        ok, kind, index, current = int(reply[0]), _text(reply[1]), int(reply[2]), int(reply[3])
        rest = [int(v) for v in reply[4:]]
        if ok:
            return AdmissionResult(True, used=tuple(rest), via="redis")
        retry = 0.0
        if kind == "window":
            window = admission.windows[index]
            buckets = list(zip(rest[0::2], rest[1::2], strict=True))
            need = current + window.amount - window.limit
            retry = window_retry_after(buckets, need, admission.now, admission.window_seconds)
        elif kind == "slot":
            retry = 1.0
        failed: Literal["budget", "window", "slot"] = (
            "budget" if kind == "budget" else "window" if kind == "window" else "slot"
        )
        return AdmissionResult(False, failed, index, current, retry, via="redis")

    async def settle(self, settlement: Settlement) -> tuple[int, ...]:
        tag = self._tag
        keys: list[str] = []
        args: list[Any] = [
            repr(settlement.now), settlement.window_seconds, settlement.member,
            len(settlement.windows), len(settlement.slots), len(settlement.releases), len(settlement.spends),
        ]
        for adjust in settlement.windows:
            keys.append(tag + adjust.key)
            args += (adjust.bucket, adjust.delta)
        keys += (tag + key for key in settlement.slots)
        for release in settlement.releases:
            keys.append(tag + release.key)
            args.append(release.amount)
        for spend in settlement.spends:
            keys.append(tag + spend.key)
            args += (spend.amount, spend.ttl if spend.ttl is not None else 0)
        reply = await self._run(self._settle, keys, args)
        return tuple(int(v) for v in reply)

    async def ping(self) -> None:
        """Raise ``CounterStoreUnavailable`` unless Redis answers a PING."""
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise CounterStoreUnavailable(f"redis counter store: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> list[Any]:
        try:
            reply = await script(keys=keys, args=args, client=self._client)
        except (RedisError, OSError) as exc:
            raise CounterStoreUnavailable(f"redis counter store: {type(exc).__name__}: {exc}") from exc
        if not isinstance(reply, list):
            raise CounterStoreUnavailable(f"redis counter store: unexpected script reply {reply!r}")
        return reply


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ResilientCounterStore:
    """Redis first; on failure apply ``mode``, and probe Redis again every ``retry_interval`` s.

    ``fallback`` (default): per-process counters, with a loud warning once per outage (limits then
    hold per replica only). ``fail_open``: admit without counting. ``fail_closed``: raise
    ``CounterStoreUnavailable`` (the policy turns it into a 503). ``healthy`` feeds readiness.
    A settlement goes to the backend that admitted (``AdmissionResult.via`` → ``Settlement.via``).
    """

    def __init__(
        self,
        redis_store: CounterStore,
        memory_store: CounterStore,
        mode: FailMode = "fallback",
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_interval: float = 5.0,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._redis = redis_store
        self._memory = memory_store
        self._mode = mode
        self._clock = clock
        self._retry_interval = retry_interval
        self._warn = warn or (lambda message: None)
        self._healthy = True
        self._next_probe = 0.0

    @property
    def healthy(self) -> bool:
        return self._healthy

    async def health_check(self) -> tuple[bool, str]:
        """Readiness: ping Redis (so an idle replica notices an outage too) and describe the mode.

        Only ``fail_closed`` makes the replica unready: in ``fallback``/``fail_open`` it keeps
        serving, and taking it out of the load balancer would turn a Redis outage into a full one.
        """
        ping = getattr(self._redis, "ping", None)
        if ping is not None:
            try:
                await ping()
            except CounterStoreUnavailable as exc:
                self._mark_down(exc)
            else:
                self._mark_up()
        if self._healthy:
            return True, "connected"
        detail = {
            "fallback": "redis unavailable: per-process counters (redis_fail_mode=fallback)",
            "fail_open": "redis unavailable: limits not enforced (redis_fail_mode=fail_open)",
            "fail_closed": "redis unavailable: counted requests refused (redis_fail_mode=fail_closed)",
        }[self._mode]
        return self._mode != "fail_closed", detail

    async def admit(self, admission: CounterAdmission) -> AdmissionResult:
        if self._use_redis():
            try:
                result = await self._redis.admit(admission)
            except CounterStoreUnavailable as exc:
                self._mark_down(exc)
            else:
                self._mark_up()
                return result
        if self._mode == "fail_closed":
            raise CounterStoreUnavailable("redis counter store is unavailable (redis_fail_mode=fail_closed)")
        if self._mode == "fail_open":
            return AdmissionResult(True, used=tuple(0 for _ in admission.windows), via="none")
        result = await self._memory.admit(admission)
        return AdmissionResult(
            result.admitted, result.failed, result.index, result.current, result.retry_after,
            result.used, via="memory",
        )

    async def settle(self, settlement: Settlement) -> tuple[int, ...]:
        if settlement.via == "none":
            return tuple(spend.amount for spend in settlement.spends)
        if settlement.via == "memory":
            return await self._memory.settle(settlement)
        try:
            totals = await self._redis.settle(settlement)
        except CounterStoreUnavailable as exc:
            self._mark_down(exc)
            # What Redis held for this request is lost to us; count the spend locally at least.
            return await self._memory.settle(
                Settlement(settlement.now, settlement.member, spends=settlement.spends, via="memory")
            )
        self._mark_up()
        return totals

    async def close(self) -> None:
        await self._redis.close()
        await self._memory.close()

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
                    "fail_open": "requests are admitted without limits",
                    "fail_closed": "requests that need counters are refused",
                }[self._mode]
            )
        self._healthy = False
        self._next_probe = self._clock() + self._retry_interval

    def _mark_up(self) -> None:
        if not self._healthy:
            self._warn("redis counter store recovered; shared limits are enforced again")
        self._healthy = True
