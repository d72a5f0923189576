"""Router.plan / Router.run: retries, retry_policy, backoff, fallbacks, cooldowns, timeouts, queueing."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from tests.polling import until
from tests.services import missing
from tollgate.canonical import RouteHints
from tollgate.config import Deployment, ModelInfo, RouterSettings
from tollgate.errors import (
    ContentPolicyViolation,
    ContextWindowExceeded,
    GatewayError,
    NoDeploymentAvailable,
    UnknownModel,
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamError,
    UpstreamPermissionDenied,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tollgate.routing.cooldowns import DeploymentState, MemoryDeploymentState
from tollgate.routing.router import Router
from tollgate.routing.table import ModelTable, parse_aliases


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def dep(id_: str, group: str, **kw: Any) -> Deployment:
    return Deployment(
        id=id_, model_name=group, provider="fake", upstream_model=id_, litellm_model=f"fake/{id_}", **kw
    )


def make(
    deps: list[Deployment],
    *,
    clock: Clock | None = None,
    sleeps: list[float] | None = None,
    state: DeploymentState | None = None,
    backoff_base: float = 0.0,
    **settings: Any,
) -> Router:
    aliases = parse_aliases(settings.pop("model_group_alias", {}))
    recorded = sleeps if sleeps is not None else []

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)

    return Router(
        ModelTable(deps, aliases),
        RouterSettings(**settings),
        state=state or MemoryDeploymentState(),
        clock=clock or Clock(),
        sleep=sleep,
        rng=random.Random(0),
        backoff_base=backoff_base,
    )


class Script:
    """An attempt callable: per deployment id, a queue of errors to raise before answering."""

    def __init__(
        self,
        failures: dict[str, list[GatewayError]] | None = None,
        always: dict[str, GatewayError] | None = None,
    ):
        self.failures = {k: list(v) for k, v in (failures or {}).items()}
        self.always = always or {}
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, deployment: Deployment, number: int) -> str:
        self.calls.append((deployment.id, number))
        if deployment.id in self.always:
            raise self.always[deployment.id]
        pending = self.failures.get(deployment.id)
        if pending:
            raise pending.pop(0)
        return f"ok:{deployment.id}"


async def test_first_attempt_success_outcome() -> None:
    router = make([dep("a", "g")])
    outcome = await router.run(router.plan("g"), Script())
    assert (outcome.value, outcome.deployment.id, outcome.model_group, outcome.attempts) == (
        "ok:a",
        "a",
        "g",
        1,
    )


def test_plan_resolves_aliases_and_rejects_unknown_models() -> None:
    router = make([dep("a", "claude")], model_group_alias={"gpt-4o": "claude"})
    assert router.plan("gpt-4o").group == "claude"
    assert router.plan("a").group == "claude"  # upstream id served by a deployment
    with pytest.raises(UnknownModel) as info:
        router.plan("nope")
    assert "model=nope" in info.value.message


def test_default_num_retries_matches_litellm_and_merges_settings() -> None:
    assert make([dep("a", "g")]).plan("g").num_retries == 2
    assert make([dep("a", "g")], num_retries=5).plan("g").num_retries == 5
    assert make([dep("a", "g")], num_retries=5).plan("g", RouteHints(num_retries=1)).num_retries == 1


async def test_retries_retryable_errors_then_succeeds() -> None:
    sleeps: list[float] = []
    router = make([dep("a", "g")], num_retries=2, sleeps=sleeps)
    script = Script({"a": [UpstreamRateLimited("slow down"), UpstreamError("boom")]})
    outcome = await router.run(router.plan("g"), script)
    assert outcome.attempts == 3
    assert script.calls == [("a", 1), ("a", 2), ("a", 3)]
    assert sleeps == []  # zero backoff and no Retry-After: no wait at all


@pytest.mark.parametrize(
    "error", [UpstreamBadRequest("bad"), UpstreamAuthError("key"), UpstreamPermissionDenied("no")]
)
async def test_never_retries_400_401_403(error: GatewayError) -> None:
    router = make([dep("a", "g")], num_retries=3)
    script = Script(always={"a": error})
    with pytest.raises(type(error)):
        await router.run(router.plan("g"), script)
    assert len(script.calls) == 1


async def test_gives_up_after_num_retries_with_the_last_error() -> None:
    router = make([dep("a", "g")], num_retries=1)
    script = Script(
        {"a": [UpstreamUnavailable("first"), UpstreamUnavailable("second"), UpstreamUnavailable("x")]}
    )
    with pytest.raises(UpstreamUnavailable) as info:
        await router.run(router.plan("g"), script)
    assert info.value.message == "second"
    assert len(script.calls) == 2


async def test_retry_policy_per_error_class() -> None:
    policy = {"RateLimitErrorRetries": 0, "InternalServerErrorRetries": 4, "BadRequestErrorRetries": 3}
    router = make([dep("a", "g")], num_retries=1, retry_policy=policy)
    rate = Script(always={"a": UpstreamRateLimited("429")})
    with pytest.raises(UpstreamRateLimited):
        await router.run(router.plan("g"), rate)
    assert len(rate.calls) == 1
    server = Script(always={"a": UpstreamError("500", status=500)})
    with pytest.raises(UpstreamError):
        await router.run(router.plan("g"), server)
    assert len(server.calls) == 5
    bad = Script(always={"a": UpstreamBadRequest("400")})  # a policy cannot make a 400 retryable
    with pytest.raises(UpstreamBadRequest):
        await router.run(router.plan("g"), bad)
    assert len(bad.calls) == 1
    # A per-request num_retries may lower the policy's count, never raise it.
    hinted = Script(always={"a": UpstreamRateLimited("429")})
    with pytest.raises(UpstreamRateLimited):
        await router.run(router.plan("g", RouteHints(num_retries=2)), hinted)
    assert len(hinted.calls) == 1
    lowered = Script(always={"a": UpstreamError("500", status=500)})
    with pytest.raises(UpstreamError):
        await router.run(router.plan("g", RouteHints(num_retries=2)), lowered)
    assert len(lowered.calls) == 3


async def test_a_request_cannot_raise_num_retries() -> None:
    router = make([dep("a", "g")], num_retries=0)
    script = Script(always={"a": UpstreamUnavailable("503")})
    with pytest.raises(UpstreamUnavailable):
        await router.run(router.plan("g", RouteHints(num_retries=5)), script)
    assert len(script.calls) == 1


async def test_retry_after_is_a_minimum_wait() -> None:
    sleeps: list[float] = []
    router = make([dep("a", "g")], num_retries=3, sleeps=sleeps, retry_after=2.0)
    script = Script(
        {
            "a": [
                UpstreamRateLimited("429", retry_after=7.0),
                UpstreamError("500"),
                UpstreamRateLimited("429", retry_after=600.0),
            ]
        }
    )
    await router.run(router.plan("g"), script)
    # Upstream 7 s honoured; then the router's floor of 2 s; a Retry-After over 60 s is ignored.
    assert sleeps == [7.0, 2.0, 2.0]


async def test_exponential_backoff_with_jitter() -> None:
    sleeps: list[float] = []
    router = make([dep("a", "g")], num_retries=3, sleeps=sleeps, backoff_base=1.0)
    await router.run(router.plan("g"), Script({"a": [UpstreamError("x")] * 3}))
    assert len(sleeps) == 3
    for n, slept in enumerate(sleeps):
        assert 0.5 * 2**n <= slept <= 2**n


async def test_retry_moves_to_another_deployment_without_waiting() -> None:
    sleeps: list[float] = []
    router = make([dep("a", "g"), dep("b", "g")], num_retries=1, sleeps=sleeps, backoff_base=5.0)
    script = Script(
        always={"a": UpstreamRateLimited("429", retry_after=30.0), "b": UpstreamRateLimited("429")}
    )
    first = script.calls
    with pytest.raises(UpstreamRateLimited):
        await router.run(router.plan("g"), script)
    assert sorted(d for d, _ in first) == ["a", "b"]
    assert sleeps == []  # the other deployment was ready: no waiting out Retry-After


async def test_generic_fallbacks_each_group_with_its_own_retries() -> None:
    router = make(
        [dep("a", "g"), dep("b", "backup"), dep("c", "last")],
        num_retries=1,
        fallbacks=[{"g": ["backup", "last"]}],
    )
    script = Script(always={"a": UpstreamUnavailable("down"), "b": UpstreamError("down too")})
    outcome = await router.run(router.plan("g"), script)
    assert (outcome.value, outcome.model_group, outcome.attempts) == ("ok:c", "last", 5)
    assert [d for d, _ in script.calls] == ["a", "a", "b", "b", "c"]
    assert [n for _, n in script.calls] == [1, 2, 3, 4, 5]


async def test_context_window_and_content_policy_fallbacks() -> None:
    router = make(
        [dep("a", "g"), dep("big", "big"), dep("safe", "safe"), dep("any", "other")],
        fallbacks=[{"g": ["other"]}],
        context_window_fallbacks=[{"g": ["big"]}],
        content_policy_fallbacks=[{"g": ["safe"]}],
    )
    cw = await router.run(router.plan("g"), Script(always={"a": ContextWindowExceeded("too long")}))
    assert cw.model_group == "big" and cw.attempts == 2
    cp = await router.run(router.plan("g"), Script(always={"a": ContentPolicyViolation("nope")}))
    assert cp.model_group == "safe"
    generic = await router.run(router.plan("g"), Script(always={"a": UpstreamAuthError("bad key")}))
    assert generic.model_group == "other" and generic.attempts == 2


async def test_bad_request_never_falls_back() -> None:
    router = make([dep("a", "g"), dep("b", "b")], fallbacks=[{"g": ["b"]}])
    script = Script(always={"a": UpstreamBadRequest("invalid")})
    with pytest.raises(UpstreamBadRequest):
        await router.run(router.plan("g"), script)
    assert script.calls == [("a", 1)]


async def test_default_and_wildcard_fallbacks() -> None:
    router = make(
        [dep("a", "g"), dep("d", "dflt"), dep("w", "wild")], num_retries=0, default_fallbacks=["dflt"]
    )
    outcome = await router.run(router.plan("g"), Script(always={"a": UpstreamUnavailable("down")}))
    assert outcome.model_group == "dflt"
    star = make([dep("a", "g"), dep("w", "wild")], num_retries=0, fallbacks=[{"*": ["wild"]}])
    assert (await star.run(star.plan("g"), Script(always={"a": UpstreamError("x")}))).model_group == "wild"


async def test_per_request_fallbacks_replace_configured_ones() -> None:
    router = make([dep("a", "g"), dep("b", "b"), dep("c", "c")], num_retries=0, fallbacks=[{"g": ["b"]}])
    plan = router.plan("g", RouteHints(fallbacks=("c",)))
    outcome = await router.run(plan, Script(always={"a": UpstreamError("x")}))
    assert outcome.model_group == "c"
    none = router.plan("g", RouteHints(fallbacks=()))
    with pytest.raises(UpstreamError):
        await router.run(none, Script(always={"a": UpstreamError("x")}))


async def test_all_fail_raises_the_last_error() -> None:
    router = make(
        [dep("a", "g"), dep("b", "b"), dep("c", "c")], num_retries=0, fallbacks=[{"g": ["missing", "b", "c"]}]
    )
    script = Script(
        always={
            "a": UpstreamError("a down"),
            "b": UpstreamError("b down"),
            "c": UpstreamRateLimited("c limited", retry_after=3.0),
        }
    )
    with pytest.raises(UpstreamRateLimited) as info:
        await router.run(router.plan("g"), script)
    assert info.value.message == "c limited" and info.value.status == 429


async def test_cooldown_after_allowed_fails_then_all_cooling_error_and_expiry() -> None:
    clock = Clock()
    router = make(
        [dep("a", "g"), dep("b", "g")], clock=clock, num_retries=1, allowed_fails=0, cooldown_time=30.0
    )
    with pytest.raises(UpstreamError):
        await router.run(router.plan("g"), Script(always={"a": UpstreamError("x"), "b": UpstreamError("y")}))
    script = Script()
    with pytest.raises(NoDeploymentAvailable) as info:
        await router.run(router.plan("g"), script)
    assert "all deployments of 'g' are cooling down" in info.value.message
    assert info.value.retry_after == pytest.approx(30.0)
    assert script.calls == []
    clock.t += 31
    assert (await router.run(router.plan("g"), script)).attempts == 1


async def test_all_cooling_down_falls_back() -> None:
    router = make(
        [dep("a", "g"), dep("b", "g"), dep("c", "c")],
        num_retries=1,
        allowed_fails=0,
        fallbacks=[{"g": ["c"]}],
    )
    await router.run(router.plan("g"), Script(always={"a": UpstreamError("x"), "b": UpstreamError("y")}))
    script = Script()
    outcome = await router.run(router.plan("g"), script)
    assert outcome.model_group == "c" and script.calls == [("c", 1)]


async def test_allowed_fails_then_cooled_deployment_is_skipped() -> None:
    router = make([dep("a", "g"), dep("b", "g")], num_retries=1, allowed_fails=2, cooldown_time=300.0)
    script = Script(always={"a": UpstreamError("x")})
    for _ in range(100):
        assert (await router.run(router.plan("g"), script)).deployment.id == "b"
    # Failures 1 and 2 are allowed; the third starts the cooldown and "a" is never tried again.
    assert [d for d, _ in script.calls].count("a") == 3


async def test_single_deployment_is_never_cooled_down() -> None:
    router = make([dep("a", "g")], num_retries=0, allowed_fails=0)
    for _ in range(3):
        with pytest.raises(UpstreamError):
            await router.run(router.plan("g"), Script(always={"a": UpstreamError("x")}))
    assert (await router.run(router.plan("g"), Script())).deployment.id == "a"


async def test_disable_cooldowns() -> None:
    router = make([dep("a", "g"), dep("b", "g")], num_retries=1, allowed_fails=0, disable_cooldowns=True)
    with pytest.raises(UpstreamError):
        await router.run(router.plan("g"), Script(always={"a": UpstreamError("x"), "b": UpstreamError("y")}))
    assert (await router.run(router.plan("g"), Script())).attempts == 1


async def test_timeout_counts_as_failure_and_releases_in_flight() -> None:
    state = MemoryDeploymentState()
    router = make(
        [dep("a", "g", timeout=0.01), dep("b", "g")],
        num_retries=0,
        state=state,
        fallbacks=[],
        allowed_fails=0,
    )
    never = asyncio.Event()

    async def hang(deployment: Deployment, number: int) -> str:
        await never.wait()
        return "never"

    plan = router.plan("g", RouteHints(timeout=0.01))
    with pytest.raises(UpstreamTimeout) as info:
        await router.run(plan, hang)
    assert "did not answer within 0.01s" in info.value.message
    snap = await state.snapshot(["a", "b"], Clock()())
    assert snap["a"].in_flight == 0 and snap["b"].in_flight == 0
    assert snap["a"].cooling(Clock()()) or snap["b"].cooling(Clock()())


def test_timeout_precedence() -> None:
    router = make(
        [dep("a", "g", timeout=30.0, stream_timeout=5.0), dep("b", "h")], timeout=60.0, stream_timeout=9.0
    )
    a, b = router.table.deployments("g")[0], router.table.deployments("h")[0]
    assert router.plan("g").timeout_for(a) == 30.0
    assert router.plan("g", stream=True).timeout_for(a) == 5.0
    assert router.plan("h").timeout_for(b) == 60.0
    assert router.plan("h", stream=True).timeout_for(b) == 9.0
    assert router.plan("g", RouteHints(timeout=2.0)).timeout_for(a) == 2.0
    # A request may shorten the operator's timeout, never lengthen it.
    assert router.plan("g", RouteHints(timeout=300.0)).timeout_for(a) == 30.0
    assert router.plan("g", RouteHints(timeout=300.0), stream=True).timeout_for(a) == 5.0
    assert router.plan("h", RouteHints(timeout=1e308)).timeout_for(b) == 60.0
    assert make([dep("b", "h")]).plan("h").timeout_for(b) == 6000.0


async def test_pre_call_checks_skip_small_context_and_fall_back() -> None:
    small = ModelInfo(max_input_tokens=1000)
    router = make(
        [
            dep("s", "g", info=small),
            dep("l", "g", info=ModelInfo(max_input_tokens=200_000)),
            dep("x", "x", info=small),
            dep("big", "big"),
        ],
        enable_pre_call_checks=True,
        context_window_fallbacks=[{"x": ["big"]}],
    )
    picks = {
        (await router.run(router.plan("g", estimated_tokens=5000), Script())).deployment.id for _ in range(20)
    }
    assert picks == {"l"}
    script = Script()
    outcome = await router.run(router.plan("x", estimated_tokens=5000), script)
    assert outcome.model_group == "big" and script.calls == [("big", 1)]


async def test_usage_recorded_feeds_tpm_caps() -> None:
    capped = dep("a", "g", tpm=1000)
    router = make([capped, dep("b", "g")], routing_strategy="usage-based-routing-v2")
    await router.record_usage(capped, 990)
    picks = {
        (await router.run(router.plan("g", estimated_tokens=20), Script())).deployment.id for _ in range(10)
    }
    assert picks == {"b"}


async def test_saturated_group_queues_then_times_out_or_proceeds() -> None:
    clock = Clock(60_000.0)
    depths: list[int] = []
    router = make([dep("a", "g", rpm=1)], clock=clock, max_queue_wait=0.0)
    await router.run(router.plan("g"), Script())
    with pytest.raises(NoDeploymentAvailable) as info:
        await router.run(router.plan("g"), Script())
    assert "at their rate limits" in info.value.message

    waiting = make([dep("a", "g", rpm=1)], clock=clock, max_queue_wait=120.0)
    waiting._on_queue_depth = lambda name, depth: depths.append(depth)
    waiting._queue_poll = 3600.0  # only an explicit wake may let it through
    await waiting.run(waiting.plan("g"), Script())
    task = asyncio.create_task(waiting.run(waiting.plan("g"), Script()))
    await until(lambda: waiting.queue_depths == {"g": 1}, what="the request queued")
    assert not task.done()
    clock.t += 60  # the next minute frees the rpm cap
    waiting.wake("g")
    outcome = await asyncio.wait_for(task, 1.0)
    assert outcome.deployment.id == "a"
    assert depths == [1, 0] and waiting.queue_depths == {}


async def test_a_saturated_group_with_a_fallback_falls_back_instead_of_queueing() -> None:
    clock = Clock(60_000.0)
    router = make(
        [dep("a", "g", rpm=1), dep("b", "h", rpm=1)], clock=clock, max_queue_wait=120.0,
        fallbacks=[{"g": ["h"]}],
    )
    router._queue_poll = 3600.0  # a queued request would hang: only falling back can answer
    assert (await router.run(router.plan("g"), Script())).deployment.id == "a"
    outcome = await asyncio.wait_for(router.run(router.plan("g"), Script()), 1.0)
    assert (outcome.model_group, outcome.deployment.id) == ("h", "b")
    assert router.queue_depths == {}
    # The last group of the chain is at its cap too: now the request waits there for capacity.
    task = asyncio.create_task(router.run(router.plan("g"), Script()))
    await until(lambda: router.queue_depths == {"h": 1}, what="the request queued at h")
    assert not task.done()
    clock.t += 60
    router.wake("h")
    assert (await asyncio.wait_for(task, 1.0)).model_group in ("g", "h")


class _SlowEnd(MemoryDeploymentState):
    """Ends of attempts wait for ``gate``, as a Redis round trip would."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.ending = asyncio.Event()

    async def end(self, deployment_id: str, now: float, latency: float | None) -> None:
        self.ending.set()
        await self.gate.wait()
        await super().end(deployment_id, now, latency)


async def test_a_cancelled_attempt_still_ends_its_in_flight_count() -> None:
    state = _SlowEnd()
    router = make([dep("a", "g", rpm=100)], state=state)  # an rpm cap: in-flight is tracked
    started = asyncio.Event()

    async def attempt(deployment: Deployment, number: int) -> str:
        started.set()
        await asyncio.Event().wait()  # the upstream is slow; the client leaves
        return "never"

    task = asyncio.create_task(router.run(router.plan("g"), attempt))
    await started.wait()
    # Cancelled twice, as anyio's cancel scope (a client gone mid-stream) keeps cancelling
    # every await: the second one lands on the end of the attempt.
    task.cancel()
    await asyncio.wait_for(state.ending.wait(), 5)  # the first cancel reached the attempt's end
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    state.gate.set()

    async def none_in_flight() -> bool:
        return (await state.snapshot(["a"], 1_000_000.0))["a"].in_flight == 0

    await until(none_in_flight, timeout=5, what="the cancelled attempt's end")  # shielded, it completes


async def test_redis_state_shared_by_two_routers() -> None:
    import uuid

    import redis.asyncio as aioredis
    from redis.exceptions import RedisError

    from tollgate.routing.cooldowns import RedisDeploymentState

    prefix = f"tollgate-test:{uuid.uuid4().hex}"
    clients = [aioredis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=0.5) for _ in range(2)]
    try:
        await clients[0].ping()
    except (RedisError, OSError):
        for c in clients:
            await c.aclose()
        missing("Redis is not reachable on 127.0.0.1:6379")
    try:
        clock = Clock()
        deps = [dep("a", "g"), dep("b", "g")]
        one, two = (
            make(
                deps,
                clock=clock,
                num_retries=1,
                allowed_fails=0,
                cooldown_time=60.0,
                state=RedisDeploymentState(c, prefix=prefix, errors=(RedisError, OSError)),
            )
            for c in clients
        )
        # Router one sees "a" fail once (allowed_fails 0): "a" cools down for every replica.
        failing_a = Script(always={"a": UpstreamError("x")})
        for _ in range(20):
            if "a" in [d for d, _ in failing_a.calls]:
                break
            await one.run(one.plan("g"), failing_a)
        assert [d for d, _ in failing_a.calls].count("a") == 1
        seen = Script()
        for _ in range(20):
            await two.run(two.plan("g"), seen)
        assert {d for d, _ in seen.calls} == {"b"}
        clock.t += 61
        for _ in range(20):
            await two.run(two.plan("g"), seen)
        assert "a" in {d for d, _ in seen.calls[20:]}
    finally:
        keys = [k async for k in clients[0].scan_iter(match=f"{prefix}:*")]
        if keys:
            await clients[0].delete(*keys)
        for c in clients:
            await c.aclose()


class CountingState(MemoryDeploymentState):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def snapshot(self, deployment_ids: Any, now: float, latency_ttl: float | None = None) -> Any:
        self.calls.append("snapshot")
        return await super().snapshot(deployment_ids, now, latency_ttl)

    async def begin(self, deployment_id: str, now: float) -> None:
        self.calls.append("begin")
        await super().begin(deployment_id, now)

    async def end(self, deployment_id: str, now: float, latency: float | None) -> None:
        self.calls.append("end")
        await super().end(deployment_id, now, latency)

    async def record_usage(self, deployment_id: str, tokens: int, now: float) -> None:
        self.calls.append("usage")
        await super().record_usage(deployment_id, tokens, now)


async def test_single_uncapped_deployment_touches_no_shared_state() -> None:
    state = CountingState()
    only = dep("a", "g")
    router = make([only], state=state)
    outcome = await router.run(router.plan("g"), Script())
    await router.record_usage(only, 50)
    assert outcome.deployment.id == "a" and state.calls == []


async def test_tracking_follows_strategy_and_caps() -> None:
    state = CountingState()
    router = make([dep("a", "g"), dep("b", "g")], state=state)  # simple-shuffle: cooldowns only
    await router.run(router.plan("g"), Script())
    assert state.calls == ["snapshot"]
    state = CountingState()
    capped = dep("a", "g", rpm=10, tpm=100)
    router = make([capped], state=state)
    await router.run(router.plan("g"), Script())
    await router.record_usage(capped, 5)
    assert state.calls == ["snapshot", "begin", "end", "usage"]
    state = CountingState()
    router = make([dep("a", "g"), dep("b", "g")], state=state, routing_strategy="least-busy")
    await router.run(router.plan("g"), Script())
    assert state.calls == ["snapshot", "begin", "end"]
