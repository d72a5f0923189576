"""Per-deployment health and load: in-flight counts, per-minute usage, latency, failures, cooldowns.

``DeploymentState`` is the protocol the router reads once per routing decision (``snapshot``) and
writes as attempts start and end. ``MemoryDeploymentState`` is the default (one process);
``RedisDeploymentState`` shares the same facts across replicas, one pipelined round trip per
read or write. Routing state is advisory: if Redis fails, reads look healthy and writes are
dropped rather than failing a request. Also here: LiteLLM's cooldown rule (a deployment failing
more than ``allowed_fails`` times in a minute sits out ``cooldown_time`` seconds) and the
LiteLLM error-class names that ``retry_policy`` and ``allowed_fails_policy`` are keyed by.
Imports only ``errors``; the Redis client is passed in (bootstrap builds it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tollgate.errors import (
    AuthenticationFailed,
    ContentPolicyViolation,
    InvalidRequest,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamPermissionDenied,
    UpstreamRateLimited,
    UpstreamTimeout,
)

__all__ = [
    "DeploymentState",
    "DeploymentStats",
    "MemoryDeploymentState",
    "RedisDeploymentState",
    "allowed_fails_for",
    "causes_cooldown",
    "litellm_error_class",
]

LATENCY_SAMPLES = 10  # LiteLLM's max_latency_list_size
_MINUTE = 60.0
_INFLIGHT_TTL = 3600  # a crashed replica's in-flight count heals within the hour


@dataclass(frozen=True, slots=True)
class DeploymentStats:
    """What one routing decision knows about one deployment."""

    in_flight: int = 0
    requests: int = 0  # started this minute
    tokens: int = 0  # used this minute
    latency: float | None = None  # average of recent samples within the ttl, seconds
    cooldown_until: float = 0.0

    def cooling(self, now: float) -> bool:
        return self.cooldown_until > now


IDLE = DeploymentStats()


def litellm_error_class(err: BaseException) -> str:
    """The LiteLLM exception name policy keys are built from (``RateLimitError`` → ``…Retries``)."""
    if isinstance(err, UpstreamTimeout | TimeoutError):
        return "TimeoutError"
    if isinstance(err, UpstreamRateLimited):
        return "RateLimitError"
    if isinstance(err, UpstreamAuthError | UpstreamPermissionDenied | AuthenticationFailed):
        return "AuthenticationError"
    if isinstance(err, ContentPolicyViolation):
        return "ContentPolicyViolationError"
    if isinstance(err, InvalidRequest | UpstreamBadRequest):
        return "BadRequestError"
    if isinstance(err, UpstreamError) and err.status >= 500:
        return "InternalServerError"
    return type(err).__name__


def causes_cooldown(err: BaseException) -> bool:
    """LiteLLM's rule: 429, 401, 404, 408 and 5xx count towards cooldown; other 4xx do not."""
    if isinstance(err, TimeoutError):
        return True
    if not isinstance(err, UpstreamError):
        return False
    return err.status >= 500 or err.status in (401, 404, 408, 429)


def allowed_fails_for(err: BaseException, allowed_fails: int, policy: Mapping[str, int]) -> tuple[str, int]:
    """(failure-counter name, allowed failures per minute) for this error."""
    cls = litellm_error_class(err)
    specific = policy.get(f"{cls}AllowedFails")
    if specific is not None:
        return cls, specific
    return "all", allowed_fails


class DeploymentState(Protocol):
    """Shared facts about deployments. ``now`` is wall-clock seconds (comparable across replicas)."""

    async def snapshot(
        self, deployment_ids: Sequence[str], now: float, latency_ttl: float | None = None
    ) -> dict[str, DeploymentStats]:
        """Stats for each id, in one read. ``latency_ttl`` ``None`` skips latency samples."""
        ...

    async def begin(self, deployment_id: str, now: float) -> None:
        """An attempt starts: one more in flight, one more request this minute."""
        ...

    async def end(self, deployment_id: str, now: float, latency: float | None) -> None:
        """An attempt ends; ``latency`` is recorded for successes only."""
        ...

    async def record_failure(
        self, deployment_id: str, counter: str, now: float, allowed_fails: int, cooldown_time: float
    ) -> bool:
        """Count one failure this minute; start a cooldown past ``allowed_fails``. True if it started."""
        ...

    async def record_usage(self, deployment_id: str, tokens: int, now: float) -> None:
        """Add tokens to this minute's usage (tpm caps, usage-based routing)."""
        ...


def _minute(now: float) -> int:
    return int(now // _MINUTE)


@dataclass(slots=True)
class _Entry:
    in_flight: int = 0
    minute: int = -1
    requests: int = 0
    tokens: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    cooldown_until: float = 0.0
    latencies: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))

    def roll(self, now: float) -> None:
        minute = _minute(now)
        if minute != self.minute:
            self.minute, self.requests, self.tokens = minute, 0, 0
            self.failures = {}


def _average(samples: Sequence[tuple[float, float]], now: float, ttl: float) -> float | None:
    recent = [lat for at, lat in samples if at >= now - ttl]
    return sum(recent) / len(recent) if recent else None


class MemoryDeploymentState:
    """The single-process ``DeploymentState``."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def _entry(self, deployment_id: str, now: float) -> _Entry:
        entry = self._entries.get(deployment_id)
        if entry is None:
            entry = self._entries[deployment_id] = _Entry()
        entry.roll(now)
        return entry

    async def snapshot(
        self, deployment_ids: Sequence[str], now: float, latency_ttl: float | None = None
    ) -> dict[str, DeploymentStats]:
        out: dict[str, DeploymentStats] = {}
        for dep_id in deployment_ids:
            entry = self._entries.get(dep_id)
            if entry is None:
                out[dep_id] = IDLE
                continue
            entry.roll(now)
            latency = _average(entry.latencies, now, latency_ttl) if latency_ttl is not None else None
            out[dep_id] = DeploymentStats(
                entry.in_flight, entry.requests, entry.tokens, latency, entry.cooldown_until
            )
        return out

    async def begin(self, deployment_id: str, now: float) -> None:
        entry = self._entry(deployment_id, now)
        entry.in_flight += 1
        entry.requests += 1

    async def end(self, deployment_id: str, now: float, latency: float | None) -> None:
        entry = self._entry(deployment_id, now)
        entry.in_flight = max(0, entry.in_flight - 1)
        if latency is not None:
            entry.latencies.append((now, latency))

    async def record_failure(
        self, deployment_id: str, counter: str, now: float, allowed_fails: int, cooldown_time: float
    ) -> bool:
        entry = self._entry(deployment_id, now)
        count = entry.failures.get(counter, 0) + 1
        entry.failures[counter] = count
        if count > allowed_fails:
            entry.cooldown_until = max(entry.cooldown_until, now + cooldown_time)
            entry.failures[counter] = 0
            return True
        return False

    async def record_usage(self, deployment_id: str, tokens: int, now: float) -> None:
        self._entry(deployment_id, now).tokens += tokens


class RedisPipeline(Protocol):
    """The slice of ``redis.asyncio`` pipeline commands this module uses."""

    def hincrby(self, name: str, key: str, amount: int = 1) -> Any: ...
    def hset(self, name: str, key: str, value: str) -> Any: ...
    def hmget(self, name: str, keys: list[str]) -> Any: ...
    def lpush(self, name: str, *values: str) -> Any: ...
    def ltrim(self, name: str, start: int, end: int) -> Any: ...
    def lrange(self, name: str, start: int, end: int) -> Any: ...
    def expire(self, name: str, time: int) -> Any: ...
    async def execute(self) -> list[Any]: ...


class RedisClient(Protocol):
    def pipeline(self, transaction: bool = ...) -> Any: ...


def _num(value: object) -> float:
    if value is None:
        return 0.0
    try:
        return float(value)  # type: ignore[arg-type]  # bytes, str or number from Redis
    except (TypeError, ValueError):
        return 0.0


class RedisDeploymentState:
    """``DeploymentState`` in Redis, shared by every replica.

    Keys (``p`` is the prefix): ``p:d:<id>`` hash {inflight, cd}; ``p:m:<id>:<minute>`` hash
    {req, tok, f:<counter>} expiring after two minutes; ``p:l:<id>`` list of ``at:latency``.
    ``errors`` are the exception types treated as "Redis unavailable" (bootstrap passes
    ``(redis.RedisError, OSError)``).
    """

    def __init__(
        self,
        client: RedisClient,
        *,
        prefix: str = "tollgate:routing",
        errors: tuple[type[BaseException], ...] = (OSError,),
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._errors = errors

    def _pipe(self) -> RedisPipeline:
        pipe: RedisPipeline = self._redis.pipeline(transaction=False)
        return pipe

    def _d(self, dep_id: str) -> str:
        return f"{self._prefix}:d:{dep_id}"

    def _m(self, dep_id: str, now: float) -> str:
        return f"{self._prefix}:m:{dep_id}:{_minute(now)}"

    def _l(self, dep_id: str) -> str:
        return f"{self._prefix}:l:{dep_id}"

    async def snapshot(
        self, deployment_ids: Sequence[str], now: float, latency_ttl: float | None = None
    ) -> dict[str, DeploymentStats]:
        pipe = self._pipe()
        for dep_id in deployment_ids:
            pipe.hmget(self._d(dep_id), ["inflight", "cd"])
            pipe.hmget(self._m(dep_id, now), ["req", "tok"])
            if latency_ttl is not None:
                pipe.lrange(self._l(dep_id), 0, LATENCY_SAMPLES - 1)
        try:
            rows = await pipe.execute()
        except self._errors:
            return dict.fromkeys(deployment_ids, IDLE)
        step = 3 if latency_ttl is not None else 2
        out: dict[str, DeploymentStats] = {}
        for i, dep_id in enumerate(deployment_ids):
            (inflight, cd), (req, tok) = rows[i * step], rows[i * step + 1]
            latency = None
            if latency_ttl is not None:
                latency = _average(_samples(rows[i * step + 2]), now, latency_ttl)
            out[dep_id] = DeploymentStats(
                max(0, int(_num(inflight))), int(_num(req)), int(_num(tok)), latency, _num(cd)
            )
        return out

    async def _run(self, pipe: RedisPipeline) -> list[Any] | None:
        try:
            return await pipe.execute()
        except self._errors:
            return None

    async def begin(self, deployment_id: str, now: float) -> None:
        pipe = self._pipe()
        pipe.hincrby(self._d(deployment_id), "inflight", 1)
        pipe.expire(self._d(deployment_id), _INFLIGHT_TTL)
        pipe.hincrby(self._m(deployment_id, now), "req", 1)
        pipe.expire(self._m(deployment_id, now), 120)
        await self._run(pipe)

    async def end(self, deployment_id: str, now: float, latency: float | None) -> None:
        pipe = self._pipe()
        pipe.hincrby(self._d(deployment_id), "inflight", -1)
        if latency is not None:
            key = self._l(deployment_id)
            pipe.lpush(key, f"{now:.3f}:{latency:.6f}")
            pipe.ltrim(key, 0, LATENCY_SAMPLES - 1)
            pipe.expire(key, 3600)
        await self._run(pipe)

    async def record_failure(
        self, deployment_id: str, counter: str, now: float, allowed_fails: int, cooldown_time: float
    ) -> bool:
        pipe = self._pipe()
        pipe.hincrby(self._m(deployment_id, now), f"f:{counter}", 1)
        pipe.expire(self._m(deployment_id, now), 120)
        rows = await self._run(pipe)
        if rows is None or int(_num(rows[0])) <= allowed_fails:
            return False
        pipe = self._pipe()
        pipe.hset(self._d(deployment_id), "cd", f"{now + cooldown_time:.3f}")
        pipe.hset(self._m(deployment_id, now), f"f:{counter}", "0")
        pipe.expire(self._d(deployment_id), _INFLIGHT_TTL)
        return await self._run(pipe) is not None

    async def record_usage(self, deployment_id: str, tokens: int, now: float) -> None:
        pipe = self._pipe()
        pipe.hincrby(self._m(deployment_id, now), "tok", tokens)
        pipe.expire(self._m(deployment_id, now), 120)
        await self._run(pipe)


def _samples(raw: object) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    if not isinstance(raw, list):
        return out
    for item in raw:
        text = item.decode() if isinstance(item, bytes) else str(item)
        at, _, lat = text.partition(":")
        try:
            out.append((float(at), float(lat)))
        except ValueError:
            continue
    return out
