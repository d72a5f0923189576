"""Routing and resilience through the whole gateway, in-process: the gateway (``bootstrap.build``)
in front of the programmable fake upstream app (``hang``, ``slow-<ms>``, ``flaky-<n>``,
``stream-error-after-<k>``, ``error-<status>`` model names) over an in-memory transport, no
sockets. Every scenario runs in the OpenAI and the Anthropic client format, streamed and not,
unless it only makes sense for one of them. ``/_fake/calls`` tells which upstream model was hit.
(What needs real processes — replicas sharing cooldowns through Redis — is in
``tests/e2e/test_routing_replicas.py``.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from starlette.types import ASGIApp

from tests.e2e.routing_fixtures import FORMATS, MASTER_KEY, Reply, _sse, config, deployment
from tests.fakes.inprocess import AsgiTransport, InProcessGateway, ManualClock
from tollgate.fakes.server import create_fake_app

pytestmark = pytest.mark.asyncio(loop_scope="module")

# The cooling gateway's clock: cooldowns end when a test advances it, not when the machine is slow.
COOLING_CLOCK = ManualClock()
COMBOS = [(fmt, stream) for fmt in FORMATS for stream in (False, True)]
COMBO_IDS = [f"{fmt}-{'stream' if stream else 'whole'}" for fmt, stream in COMBOS]
REPLY_TEXT = "hi"  # the fake echoes the last user text
UP = "http://fake"  # any host: the transport hands every upstream request to the fake app


def tag(fmt: str, stream: bool) -> str:
    return f"{fmt[0]}{'s' if stream else 'n'}"


def delta(before: dict[str, int], after: dict[str, int], model: str) -> int:
    return after.get(model, 0) - before.get(model, 0)


async def fake_calls(fake: ASGIApp) -> dict[str, int]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url=UP) as client:
        counts: dict[str, int] = (await client.get("/_fake/calls")).json()
        return counts


async def ask(gw: InProcessGateway, fmt: str, model: str, *, stream: bool = False, **extra: Any) -> Reply:
    """One chat call in ``fmt`` ("openai" or "anthropic"); ``extra`` goes into the body."""
    messages = [{"role": "user", "content": "hi"}]
    if fmt == "openai":
        path, headers = "/v1/chat/completions", {"Authorization": f"Bearer {MASTER_KEY}"}
        body: dict[str, Any] = {"model": model, "messages": messages}
    else:
        path, headers = "/v1/messages", {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"}
        body = {"model": model, "messages": messages, "max_tokens": 64}
    if stream:
        body["stream"] = True
    body.update(extra)
    async with gw.client() as client:
        resp = await client.post(path, content=orjson.dumps(body), headers=headers)
    events = _sse(resp.content) if stream and resp.status_code == 200 else []
    return Reply(resp.status_code, resp.headers, resp.content, events)


# ---------------------------------------------------------------------------------------------
# servers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> ASGIApp:
    return create_fake_app()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def main(fake: ASGIApp) -> AsyncIterator[InProcessGateway]:
    async with InProcessGateway(_main_config(UP), AsgiTransport(fake)) as gw:
        yield gw


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cooling(fake: ASGIApp) -> AsyncIterator[InProcessGateway]:
    deps = [
        deployment("cd", "cd-bad", UP, "error-500-cd"),
        deployment("cd", "cd-good", UP, "cd-good"),
        deployment("cd-all", "cd-x1", UP, "error-500-x1"),
        deployment("cd-all", "cd-x2", UP, "error-500-x2"),
    ]
    settings = config(deps, num_retries=0, allowed_fails=1, cooldown_time=2)
    async with InProcessGateway(settings, AsgiTransport(fake), clock=COOLING_CLOCK) as gw:
        yield gw


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def usage(fake: ASGIApp) -> AsyncIterator[InProcessGateway]:
    deps = [
        deployment("ub", "ub-1", UP, "ub-1", tpm=40),
        deployment("ub", "ub-2", UP, "ub-2", tpm=100000),
        deployment("ub", "ub-3", UP, "ub-3", tpm=100000),
        deployment("df-broken", "df-broken-1", UP, "error-500-df"),
    ]
    settings = {"routing_strategy": "usage-based-routing-v2", "num_retries": 0, "default_fallbacks": ["ub"]}
    # A clock that stands still: per-minute usage cannot roll over in the middle of a test.
    async with InProcessGateway(config(deps, **settings), AsgiTransport(fake), clock=ManualClock()) as gw:
        yield gw


def _main_config(up: str) -> dict[str, Any]:
    deps = [
        deployment("weighted", "w-heavy", up, "w-heavy", weight=9),
        deployment("weighted", "w-light", up, "w-light", weight=1),
        deployment("fb-a", "fb-a-1", up, "error-500-fba"),
        deployment("fb-b", "fb-b-1", up, "fb-b"),
        deployment("fb-c", "fb-c-1", up, "fb-c"),
        deployment("cw-small", "cw-small-1", up, "error-400-cw"),
        deployment("cw-big", "cw-big-1", up, "cw-big"),
        deployment("unauth", "unauth-1", up, "error-401-u"),
        deployment("ctx", "ctx-1", up, "error-400-ctx"),
        deployment("hang-a", "hang-a-1", up, "hang", timeout=0.5),
        deployment("hang-only", "hang-only-1", up, "hang", timeout=0.5),
        deployment("st", "st-1", up, "slow-1000-st", timeout=5, stream_timeout=0.3),
    ]
    for kind in ("error", "drop"):
        deps.append(deployment(f"early-{kind}", f"early-{kind}-1", up, f"stream-{kind}-after-0"))
        deps.append(deployment(f"late-{kind}", f"late-{kind}-1", up, f"stream-{kind}-after-3"))
    for fmt, stream in COMBOS:
        t = tag(fmt, stream)
        deps.append(deployment(f"retry429-{t}", f"r429-{t}", up, f"flaky-1-429-{t}"))
        deps.append(deployment(f"nr-{t}", f"nr-{t}", up, f"flaky-2-nr-{t}"))
    fallbacks = [
        {"fb-a": ["fb-b"]},
        {"cw-small": ["fb-c"]},
        {"hang-a": ["fb-b"]},
        {"early-error": ["fb-b"]},
        {"early-drop": ["fb-b"]},
        {"late-error": ["fb-b"]},
        {"late-drop": ["fb-b"]},
    ]
    return config(
        deps,
        num_retries=1,
        retry_after=0,
        cooldown_time=2,
        fallbacks=fallbacks,
        context_window_fallbacks=[{"cw-small": ["cw-big"]}],
    )


# ---------------------------------------------------------------------------------------------
# load balancing
# ---------------------------------------------------------------------------------------------


async def test_weighted_split_is_about_nine_to_one(main: InProcessGateway, fake: ASGIApp) -> None:
    before = await fake_calls(fake)
    seen: dict[str | None, int] = {}
    for i in range(100):
        fmt, stream = COMBOS[i % len(COMBOS)]
        reply = await ask(main, fmt, "weighted", stream=stream)
        assert reply.status == 200, reply.body
        assert reply.group == "weighted"
        seen[reply.deployment] = seen.get(reply.deployment, 0) + 1
    after = await fake_calls(fake)
    heavy, light = delta(before, after, "w-heavy"), delta(before, after, "w-light")
    assert heavy + light == 100
    assert seen == {"w-heavy": heavy, "w-light": light}
    assert 75 <= heavy <= 99 and 1 <= light <= 25


async def test_usage_based_routing_skips_a_deployment_at_its_tpm_cap(
    usage: InProcessGateway, fake: ASGIApp
) -> None:
    before = await fake_calls(fake)
    picks: list[str | None] = []
    for i in range(30):
        fmt, stream = COMBOS[i % len(COMBOS)]
        reply = await ask(usage, fmt, "ub", stream=stream)
        assert reply.status == 200, reply.body
        picks.append(reply.deployment)
    after = await fake_calls(fake)
    counts = {d: delta(before, after, d) for d in ("ub-1", "ub-2", "ub-3")}
    assert counts == {d: picks.count(d) for d in counts}
    # Uncapped, usage-based routing would give ub-1 a third of the traffic; capped at 40 tokens
    # it takes only its first few requests and none later in the minute.
    assert 1 <= counts["ub-1"] <= 6
    assert "ub-1" not in picks[15:]
    assert abs(counts["ub-2"] - counts["ub-3"]) <= 3


# ---------------------------------------------------------------------------------------------
# retries
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "stream"), COMBOS, ids=COMBO_IDS)
async def test_retry_on_429_honours_retry_after(
    main: InProcessGateway, fake: ASGIApp, fmt: str, stream: bool
) -> None:
    t = tag(fmt, stream)
    before = await fake_calls(fake)
    reply = await ask(main, fmt, f"retry429-{t}", stream=stream)
    assert reply.status == 200, reply.body
    assert reply.attempts == 2
    assert reply.deployment == f"r429-{t}"
    # (that the retry waited the upstream's retry-after: 1 is checked with an injected sleep in
    # tests/routing/test_routing_router.py)
    assert reply.text(fmt).endswith(REPLY_TEXT)
    assert delta(before, await fake_calls(fake), f"flaky-1-429-{t}") == 2


@pytest.mark.parametrize(("fmt", "stream"), COMBOS, ids=COMBO_IDS)
@pytest.mark.parametrize(
    ("group", "model", "status"), [("unauth", "error-401-u", 401), ("ctx", "error-400-ctx", 400)]
)
async def test_no_retry_on_400_or_401(
    main: InProcessGateway,
    fake: ASGIApp,
    fmt: str,
    stream: bool,
    group: str,
    model: str,
    status: int,
) -> None:
    before = await fake_calls(fake)
    reply = await ask(main, fmt, group, stream=stream, num_retries=3)
    assert reply.status == status, reply.body
    body = reply.json()
    assert body["type"] == "error" if fmt == "anthropic" else "error" in body
    assert delta(before, await fake_calls(fake), model) == 1


@pytest.mark.parametrize(("fmt", "stream"), COMBOS, ids=COMBO_IDS)
async def test_num_retries_from_the_request_body(
    main: InProcessGateway, fake: ASGIApp, fmt: str, stream: bool
) -> None:
    t = tag(fmt, stream)
    model = f"flaky-2-nr-{t}"  # fails twice, then answers
    before = await fake_calls(fake)
    first = await ask(main, fmt, f"nr-{t}", stream=stream, num_retries=0)
    assert first.status == 503, first.body  # the config's num_retries=1 would have tried twice
    assert delta(before, await fake_calls(fake), model) == 1
    second = await ask(main, fmt, f"nr-{t}", stream=stream, num_retries=3)
    assert second.status == 200, second.body
    assert second.attempts == 2
    assert delta(before, await fake_calls(fake), model) == 3


# ---------------------------------------------------------------------------------------------
# fallbacks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "stream"), COMBOS, ids=COMBO_IDS)
async def test_fallback_to_another_group(
    main: InProcessGateway, fake: ASGIApp, fmt: str, stream: bool
) -> None:
    before = await fake_calls(fake)
    reply = await ask(main, fmt, "fb-a", stream=stream)
    assert reply.status == 200, reply.body
    assert (reply.group, reply.deployment, reply.attempts) == ("fb-b", "fb-b-1", 3)
    assert reply.text(fmt).endswith(REPLY_TEXT)
    after = await fake_calls(fake)
    assert (delta(before, after, "error-500-fba"), delta(before, after, "fb-b")) == (2, 1)


@pytest.mark.parametrize(("fmt", "stream"), COMBOS, ids=COMBO_IDS)
async def test_context_window_fallback(
    main: InProcessGateway, fake: ASGIApp, fmt: str, stream: bool
) -> None:
    before = await fake_calls(fake)
    reply = await ask(main, fmt, "cw-small", stream=stream)
    assert reply.status == 200, reply.body
    assert (reply.group, reply.deployment, reply.attempts) == ("cw-big", "cw-big-1", 2)
    after = await fake_calls(fake)
    assert delta(before, after, "error-400-cw") == 1
    assert delta(before, after, "fb-c") == 0  # the generic chain is not the context-window one


@pytest.mark.parametrize(("fmt", "stream"), COMBOS, ids=COMBO_IDS)
async def test_fallbacks_from_the_request_body(
    main: InProcessGateway, fake: ASGIApp, fmt: str, stream: bool
) -> None:
    before = await fake_calls(fake)
    reply = await ask(main, fmt, "fb-a", stream=stream, fallbacks=["fb-c"], num_retries=0)
    assert reply.status == 200, reply.body
    assert (reply.group, reply.deployment, reply.attempts) == ("fb-c", "fb-c-1", 2)
    assert delta(before, await fake_calls(fake), "fb-b") == 0


@pytest.mark.parametrize(("fmt", "stream"), COMBOS, ids=COMBO_IDS)
async def test_default_fallbacks(usage: InProcessGateway, fake: ASGIApp, fmt: str, stream: bool) -> None:
    before = await fake_calls(fake)
    reply = await ask(usage, fmt, "df-broken", stream=stream)
    assert reply.status == 200, reply.body
    assert reply.group == "ub"
    assert reply.deployment in {"ub-1", "ub-2", "ub-3"}
    assert delta(before, await fake_calls(fake), "error-500-df") == 1


async def test_bedrock_converse_falls_back(main: InProcessGateway) -> None:
    converse = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    async with main.client(authorization=f"Bearer {MASTER_KEY}") as client:
        resp = await client.post("/bedrock/model/fb-a/converse", json=converse)
    assert resp.headers["x-litellm-model-group"] == "fb-b"
    assert resp.headers["x-litellm-model-id"] == "fb-b-1"
    assert resp.json()["output"]["message"]["content"][0]["text"].endswith(REPLY_TEXT)


# ---------------------------------------------------------------------------------------------
# timeouts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "stream"), COMBOS, ids=COMBO_IDS)
async def test_timeout_on_a_hung_deployment(
    main: InProcessGateway, fake: ASGIApp, fmt: str, stream: bool
) -> None:
    fallen = await ask(main, fmt, "hang-a", stream=stream, num_retries=0)
    assert fallen.status == 200, fallen.body
    assert (fallen.group, fallen.deployment, fallen.attempts) == ("fb-b", "fb-b-1", 2)
    failed = await ask(main, fmt, "hang-only", stream=stream, num_retries=0)
    assert failed.status == 408, failed.body  # the upstream never answers: only the timeout ends it


@pytest.mark.parametrize("fmt", FORMATS)
async def test_stream_timeout_applies_to_streams_only(main: InProcessGateway, fmt: str) -> None:
    streamed = await ask(main, fmt, "st", stream=True, num_retries=0)
    assert streamed.status == 408, streamed.body
    whole = await ask(main, fmt, "st", num_retries=0)
    assert whole.status == 200, whole.body


# ---------------------------------------------------------------------------------------------
# streams
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["error", "drop"])
async def test_stream_failure_before_first_byte_falls_back(
    main: InProcessGateway, fake: ASGIApp, fmt: str, kind: str
) -> None:
    before = await fake_calls(fake)
    reply = await ask(main, fmt, f"early-{kind}", stream=True)
    assert reply.status == 200, reply.body
    assert (reply.group, reply.deployment, reply.attempts) == ("fb-b", "fb-b-1", 3)
    assert reply.stream_error() is None
    assert reply.text(fmt) == f"{await _fake_prefix(fmt, main)}{REPLY_TEXT}"
    assert delta(before, await fake_calls(fake), f"stream-{kind}-after-0") == 2


async def _fake_prefix(fmt: str, gw: InProcessGateway) -> str:
    """The fake's fixed reply prefix, read from a plain answer."""
    return (await ask(gw, fmt, "fb-b")).text(fmt)[: -len(REPLY_TEXT)]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["error", "drop"])
async def test_stream_failure_after_first_byte_ends_in_an_error_event(
    main: InProcessGateway, fake: ASGIApp, fmt: str, kind: str
) -> None:
    before = await fake_calls(fake)
    reply = await ask(main, fmt, f"late-{kind}", stream=True)
    assert reply.status == 200, reply.body
    assert (reply.group, reply.deployment, reply.attempts) == (f"late-{kind}", f"late-{kind}-1", 1)
    assert reply.text(fmt) != ""  # part of the answer reached the client before the failure
    error = reply.stream_error()
    assert error is not None, reply.body
    if fmt == "anthropic":
        assert reply.events[-1][0] == "error"
        assert error["type"] == "error" and error["error"]["message"]
    else:
        assert error["error"]["message"]
    after = await fake_calls(fake)
    assert delta(before, after, f"stream-{kind}-after-3") == 1
    assert delta(before, after, "fb-b") == 0  # too late to fall back
    lines = [m for m in main.metric_lines() if m["model"] == f"late-{kind}"]
    assert lines, "no metric line for the failed stream"
    assert lines[-1]["prompt_tokens"] > 0  # usage so far is accounted
    assert lines[-1]["status_code"] >= 500


# ---------------------------------------------------------------------------------------------
# cooldowns
# ---------------------------------------------------------------------------------------------


async def test_cooldown_skips_a_failing_deployment_then_lets_it_back(
    cooling: InProcessGateway, fake: ASGIApp
) -> None:
    start = await fake_calls(fake)
    for i in range(40):  # allowed_fails: 1 → the second failure in a minute starts a cooldown
        fmt, stream = COMBOS[i % len(COMBOS)]
        await ask(cooling, fmt, "cd", stream=stream)
        if delta(start, await fake_calls(fake), "error-500-cd") == 2:
            break
    assert delta(start, await fake_calls(fake), "error-500-cd") == 2
    during = await fake_calls(fake)
    for i in range(12):
        fmt, stream = COMBOS[i % len(COMBOS)]
        reply = await ask(cooling, fmt, "cd", stream=stream)
        assert (reply.status, reply.deployment) == (200, "cd-good"), reply.body
    assert delta(during, await fake_calls(fake), "error-500-cd") == 0
    COOLING_CLOCK.advance(2.2)  # the 2 s cooldown ends
    back = await fake_calls(fake)
    for _ in range(30):
        await ask(cooling, "openai", "cd")
        if delta(back, await fake_calls(fake), "error-500-cd"):
            break
    assert delta(back, await fake_calls(fake), "error-500-cd") == 1


@pytest.mark.parametrize("fmt", FORMATS)
async def test_every_deployment_cooling_down(cooling: InProcessGateway, fake: ASGIApp, fmt: str) -> None:
    reply = None
    for _ in range(20):
        reply = await ask(cooling, fmt, "cd-all")
        if reply.status == 503 and b"cooling down" in reply.body:
            break
    assert reply is not None and reply.status == 503, reply and reply.body
    assert b"all deployments of 'cd-all' are cooling down" in reply.body
    before = await fake_calls(fake)
    again = await ask(cooling, fmt, "cd-all", stream=True)
    assert again.status == 503 and b"cooling down" in again.body
    after = await fake_calls(fake)
    assert delta(before, after, "error-500-x1") == delta(before, after, "error-500-x2") == 0
    COOLING_CLOCK.advance(2.1)  # leave both deployments usable for the next parameter


