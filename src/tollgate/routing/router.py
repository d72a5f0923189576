"""The router: pick a deployment, retry with backoff, fall back across model groups.

``Router.plan`` resolves a model name (aliases first) to a model group and fixes everything the
request decides up front (retries, fallback chains, timeouts). ``Router.run`` calls the gateway's
``attempt(deployment, attempt_number)`` until one succeeds, following LiteLLM's
``router_settings`` semantics. Routing never imports providers: an attempt is any awaitable
callable. For a stream, the attempt opens the upstream stream and returns it; retries and
fallbacks happen only until it returns (nothing has reached the client before then).

Each attempt runs under ``plan.timeout_for(deployment)`` seconds; the gateway's attempt may pass
the same value to its HTTP client. A timed-out attempt is an ``UpstreamTimeout`` failure.
Imports ``canonical``, ``config``, ``errors`` and this package only.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tollgate.canonical import NO_HINTS, RouteHints
from tollgate.config import Config, Deployment, LitellmSettings, RouterSettings
from tollgate.errors import (
    ContextWindowExceeded,
    GatewayError,
    NoDeploymentAvailable,
    UnknownModel,
    UpstreamTimeout,
)
from tollgate.routing.cooldowns import (
    DeploymentState,
    MemoryDeploymentState,
    allowed_fails_for,
    causes_cooldown,
    litellm_error_class,
)
from tollgate.routing.plan import Outcome, Plan, fallback_map
from tollgate.routing.queue import RequestQueue
from tollgate.routing.strategies import choose, latency_ttl, lowest_order, screen
from tollgate.routing.table import ModelTable, parse_aliases

__all__ = ["DEFAULT_NUM_RETRIES", "Outcome", "Plan", "Router"]

T = TypeVar("T")

DEFAULT_NUM_RETRIES = 2  # LiteLLM's Router falls back to openai.DEFAULT_MAX_RETRIES
DEFAULT_REQUEST_TIMEOUT = 6000.0  # litellm.request_timeout
MAX_HONOURED_RETRY_AFTER = 60.0  # LiteLLM ignores longer upstream Retry-After values


@dataclass(frozen=True, slots=True)
class _Tracking:
    """Which shared deployment facts a group's routing reads, so nothing else is written or read:
    with Redis each of these is a round trip per request."""

    snapshot: bool  # choosing needs stats: several deployments (cooldowns), caps, or size checks
    in_flight: bool  # begin/end: least-busy, or per-deployment rpm caps (requests this minute)
    latency: bool  # latency-based routing samples
    usage: bool  # tokens this minute: usage-based routing or tpm caps


class _Count:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0


class Router:
    """LiteLLM-compatible routing over a ``ModelTable``. Clock, sleep and randomness are injected."""

    def __init__(
        self,
        table: ModelTable,
        settings: RouterSettings,
        litellm: LitellmSettings | None = None,
        *,
        state: DeploymentState | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        request_timeout: float | None = None,
        default_priority: int = 0,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        queue_poll_interval: float = 0.1,
        on_queue_depth: Callable[[str, int], None] | None = None,
    ) -> None:
        ls = litellm or LitellmSettings()
        self.table = table
        self.settings = settings
        self.state: DeploymentState = state or MemoryDeploymentState()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._strategy = settings.routing_strategy
        self._args: Mapping[str, Any] = settings.routing_strategy_args
        self._latency_ttl = latency_ttl(self._strategy, self._args)
        self._pre_call = settings.enable_pre_call_checks or settings.enable_pre_call_check
        self._num_retries = next(
            (n for n in (settings.num_retries, ls.num_retries) if n is not None), DEFAULT_NUM_RETRIES
        )
        self._fallbacks = fallback_map(settings.fallbacks or ls.fallbacks)
        self._cw_fallbacks = fallback_map(settings.context_window_fallbacks or ls.context_window_fallbacks)
        self._cp_fallbacks = fallback_map(settings.content_policy_fallbacks or ls.content_policy_fallbacks)
        self._default_fallbacks = tuple(settings.default_fallbacks or ls.default_fallbacks)
        base_timeout = next(
            (t for t in (settings.timeout, ls.request_timeout, request_timeout) if t is not None),
            DEFAULT_REQUEST_TIMEOUT,
        )
        self._timeout = base_timeout
        stream_timeout = settings.stream_timeout
        self._stream_timeout = stream_timeout if stream_timeout is not None else base_timeout
        self._retry_policy = settings.retry_policy
        self._default_priority = default_priority
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._queue_poll = queue_poll_interval
        self._on_queue_depth = on_queue_depth
        self._queues: dict[str, RequestQueue] = {}

    @classmethod
    def from_config(cls, config: Config, **kwargs: Any) -> Router:
        """Table and router from a loaded config; ``kwargs`` go to ``Router.__init__``."""
        aliases = parse_aliases(config.litellm.model_group_alias, config.router.model_group_alias)
        table = ModelTable(config.deployments, aliases)
        kwargs.setdefault("request_timeout", config.general.request_timeout)
        return cls(table, config.router, config.litellm, **kwargs)

    def plan(
        self,
        model: str,
        hints: RouteHints = NO_HINTS,
        estimated_tokens: int = 0,
        *,
        stream: bool = False,
    ) -> Plan:
        """Resolve ``model`` and fix this request's retries, fallbacks and timeouts.

        Raises ``UnknownModel`` when no group, alias or served upstream id matches.
        """
        group = self.table.group_for(model, hints.model_group)  # a managed prompt's model: chosen for it
        if group is None:
            # LiteLLM's wording: clients and tests match on it.
            raise UnknownModel(
                f"Invalid model name passed in model={model}. "
                "Call `/v1/models` to view available models for your key.",
                param="model",
            )
        if hints.fallbacks is not None:
            generic: tuple[str, ...] = hints.fallbacks
        else:
            generic = self._lookup(self._fallbacks, model, group) or self._fallbacks.get("*", ())
            generic = generic or self._default_fallbacks
        return Plan(
            model=model,
            group=group,
            estimated_tokens=estimated_tokens,
            stream=stream,
            num_retries=hints.num_retries if hints.num_retries is not None else self._num_retries,
            retries_from_request=hints.num_retries is not None,
            priority=hints.priority,
            fallbacks=generic,
            context_window_fallbacks=self._lookup(self._cw_fallbacks, model, group),
            content_policy_fallbacks=self._lookup(self._cp_fallbacks, model, group),
            request_timeout=hints.timeout,
            default_timeout=self._timeout,
            default_stream_timeout=self._stream_timeout,
        )

    def deployments(self, model: str) -> tuple[Deployment, ...]:
        """Every deployment of the group ``model`` resolves to (for admission); raises ``UnknownModel``."""
        return self.table.deployments(self.plan(model).group)

    @staticmethod
    def _lookup(table: Mapping[str, tuple[str, ...]], model: str, group: str) -> tuple[str, ...]:
        return table.get(model) or table.get(group) or ()

    async def run(self, plan: Plan, attempt: Callable[[Deployment, int], Awaitable[T]]) -> Outcome[T]:
        """Call ``attempt`` until it succeeds; raise the last error when every option failed.

        A group whose deployments are all at their rpm/tpm caps waits in its queue only when no
        fallback group is left to try; otherwise the request falls back at once."""
        count = _Count()
        try:
            spare = bool(self._groups(plan.fallbacks, plan.group))
            return await self._run_group(plan, plan.group, attempt, count, spare)
        except GatewayError as err:
            last = err
            groups = self._groups(plan.chain_for(err), plan.group)
        for position, group in enumerate(groups):
            try:
                return await self._run_group(plan, group, attempt, count, position + 1 < len(groups))
            except GatewayError as err:
                last = err
        raise last

    def _groups(self, chain: Sequence[str], first: str) -> list[str]:
        """The distinct model groups a fallback chain resolves to, in order, without ``first``."""
        seen = {first}
        groups: list[str] = []
        for name in chain:
            group = self.table.resolve(name)
            if group is not None and group not in seen:
                seen.add(group)
                groups.append(group)
        return groups

    async def _run_group(
        self,
        plan: Plan,
        group: str,
        attempt: Callable[[Deployment, int], Awaitable[T]],
        count: _Count,
        spare: bool = False,
    ) -> Outcome[T]:
        """``spare``: another group can take the request, so capacity is not waited for here."""
        deployments = self.table.deployments(group)
        if not deployments:
            raise NoDeploymentAvailable(f"model group '{group}' has no deployments")
        tracking = self._tracking(deployments)
        tried: set[str] = set()
        retries = 0
        while True:
            if tracking.snapshot:
                dep, others = await self._pick(plan, group, deployments, tried, spare)
            else:
                dep, others = deployments[0], False  # one uncapped deployment: nothing to choose
            tried.add(dep.id)
            count.n += 1
            try:
                value = await self._attempt(plan, group, dep, attempt, count.n, tracking)
            except GatewayError as err:
                await self._record_failure(dep, err, len(deployments))
                allowed = self._retries_for(plan, err)
                if retries >= allowed:
                    raise
                retries += 1
                wait = self._retry_wait(err, retries, others)
                if wait > 0:
                    await self._sleep(wait)
                continue
            return Outcome(value, dep, group, count.n)

    async def _attempt(
        self,
        plan: Plan,
        group: str,
        dep: Deployment,
        attempt: Callable[[Deployment, int], Awaitable[T]],
        number: int,
        tracking: _Tracking,
    ) -> T:
        timeout = plan.timeout_for(dep)
        start = self._clock()
        if tracking.in_flight:
            await self.state.begin(dep.id, start)
        latency: float | None = None
        try:
            try:
                async with asyncio.timeout(timeout):
                    value = await attempt(dep, number)
            except TimeoutError as exc:
                raise UpstreamTimeout(
                    f"model '{group}' (deployment {dep.id}) did not answer within {timeout:g}s",
                    provider=dep.provider,
                ) from exc
            latency = max(0.0, self._clock() - start)
            return value
        finally:
            self.wake(group)
            if tracking.in_flight or (tracking.latency and latency is not None):
                ended = self.state.end(dep.id, self._clock(), latency if tracking.latency else None)
                task = asyncio.current_task()
                # A cancelled request (client gone) cannot await any more: the shielded write
                # still runs, so the deployment's in-flight count does not leak.
                await (asyncio.shield(ended) if task is not None and task.cancelling() else ended)

    async def _pick(
        self, plan: Plan, group: str, deployments: Sequence[Deployment], tried: set[str], spare: bool
    ) -> tuple[Deployment, bool]:
        """A deployment for the next attempt, and whether another untried one was also eligible."""
        ids = [d.id for d in deployments]
        while True:
            now = self._clock()
            stats = await self.state.snapshot(ids, now, self._latency_ttl)
            screened = screen(deployments, stats, now, plan.estimated_tokens, self._pre_call)
            if screened.eligible:
                fresh = [d for d in screened.eligible if d.id not in tried]
                pool = lowest_order(fresh or screened.eligible)
                dep = choose(self._strategy, pool, stats, self._rng, self._args)
                others = any(d.id != dep.id for d in fresh)
                return dep, others
            if screened.at_cap:
                if spare:
                    raise NoDeploymentAvailable(
                        f"all deployments of '{group}' are at their rate limits", retry_after=1.0
                    )
                await self._queue(group).wait(plan.priority, self._has_capacity(plan, deployments))
                continue
            if screened.too_small:
                limit = max(d.info.max_input_tokens or 0 for d in screened.too_small)
                raise ContextWindowExceeded(
                    f"model '{group}' accepts at most {limit} input tokens; "
                    f"this request has about {plan.estimated_tokens}",
                    param="messages",
                )
            wait = min(stats[d.id].cooldown_until for d in screened.cooling) - now
            raise NoDeploymentAvailable(
                f"all deployments of '{group}' are cooling down after repeated failures; "
                f"retry in {max(wait, 0.0):.0f}s",
                retry_after=max(wait, 0.0),
            )

    def _has_capacity(
        self, plan: Plan, deployments: Sequence[Deployment]
    ) -> Callable[[], Awaitable[bool]]:
        ids = [d.id for d in deployments]

        async def ready() -> bool:
            now = self._clock()
            stats = await self.state.snapshot(ids, now)
            return bool(screen(deployments, stats, now, plan.estimated_tokens, self._pre_call).eligible)

        return ready

    def _queue(self, group: str) -> RequestQueue:
        queue = self._queues.get(group)
        if queue is None:
            queue = self._queues[group] = RequestQueue(
                group,
                max_size=self.settings.max_queue_size,
                max_wait=self.settings.max_queue_wait,
                clock=self._clock,
                default_priority=self._default_priority,
                poll_interval=self._queue_poll,
                on_depth=self._on_queue_depth,
            )
        return queue

    def wake(self, group: str) -> None:
        """Capacity may have returned for ``group`` (a new minute, a config change): re-probe now."""
        queue = self._queues.get(group)
        if queue is not None and queue.depth:
            queue.notify()

    @property
    def queue_depths(self) -> dict[str, int]:
        """Requests waiting for capacity, per model group (for metrics)."""
        return {name: q.depth for name, q in self._queues.items() if q.depth}

    def _retries_for(self, plan: Plan, err: GatewayError) -> int:
        # 400/401/403-class errors are never retried, whatever retry_policy says.
        if not err.retryable:
            return 0
        policy = self._retry_policy.get(f"{litellm_error_class(err)}Retries")
        configured = policy if policy is not None else self._num_retries
        # A request may ask for fewer retries than the operator allows, never more.
        return min(plan.num_retries, configured) if plan.retries_from_request else configured

    def _retry_wait(self, err: GatewayError, retry_number: int, others: bool) -> float:
        floor = self.settings.retry_after
        if others:
            # Another deployment is ready: LiteLLM retries at once rather than waiting out this one.
            return floor
        upstream = err.retry_after
        if upstream is not None and 0 < upstream <= MAX_HONOURED_RETRY_AFTER:
            return max(floor, upstream)
        backoff = min(self._backoff_max, self._backoff_base * float(2 ** (retry_number - 1)))
        return max(floor, backoff * (0.5 + 0.5 * self._rng.random()))

    async def _record_failure(self, dep: Deployment, err: GatewayError, group_size: int) -> None:
        # LiteLLM never cools down the only deployment of a group: it would turn a blip into an outage.
        if self.settings.disable_cooldowns or group_size < 2 or not causes_cooldown(err):
            return
        settings = self.settings
        counter, allowed = allowed_fails_for(err, settings.allowed_fails, settings.allowed_fails_policy)
        await self.state.record_failure(dep.id, counter, self._clock(), allowed, settings.cooldown_time)

    def _tracking(self, deployments: Sequence[Deployment]) -> _Tracking:
        several = len(deployments) > 1
        rpm_caps = any(d.rpm is not None for d in deployments)
        tpm_caps = any(d.tpm is not None for d in deployments)
        sized = self._pre_call and any(d.info.max_input_tokens for d in deployments)
        strategy = self._strategy
        return _Tracking(
            snapshot=several or rpm_caps or tpm_caps or sized,
            in_flight=rpm_caps or (several and strategy == "least-busy"),
            latency=several and strategy == "latency-based-routing",
            usage=tpm_caps or (several and strategy.startswith("usage-based-routing")),
        )

    async def record_usage(self, deployment: Deployment, tokens: int) -> None:
        """Count a finished call's tokens against the deployment's tpm (call after success)."""
        if tokens > 0 and self._tracking(self.table.deployments(deployment.model_name)).usage:
            await self.state.record_usage(deployment.id, tokens, self._clock())
