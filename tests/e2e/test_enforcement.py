"""Enforcement end to end (issue 6): every limit kind at every level, model access and budgets,
through the official OpenAI and Anthropic SDKs and boto3 against a real ``tollgate serve``.

Thresholds are exact: the fake provider's usage is deterministic, so each limit is chosen to admit
exactly ``n`` requests and refuse the next one. A request is admitted while what its limits count
is below them (LiteLLM's rule). For a one-message request with text ``t`` the gateway reserves
``3 + 4 + ceil(len(t)/4)`` input tokens (``policy.tokens``) plus ``min(max_tokens, 256)`` output
tokens; settlement replaces that with the real usage (input ``len(t)//4``, output
``min(8, max_tokens)`` words of the fake reply).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest_native import bedrock_client as native_bedrock_client
from tests.e2e.servers import gateway
from tests.polling import wait_until

MASTER = "sk-enforce-master"
TEXT = "hi"  # estimate 3 + 4 + 1 = 8 input tokens; the fake counts max(1, 2 // 4) = 1
EST_IN = 3 + 4 + math.ceil(len(TEXT) / 4)
ACTUAL_IN = max(1, len(TEXT) // 4)
MAX_TOKENS = 5  # below the fake reply's 8 words, so the real output equals the reservation
IN_PRICE = Decimal("0.001")
OUT_PRICE = Decimal("0.002")
ESTIMATE = EST_IN * IN_PRICE + MAX_TOKENS * OUT_PRICE  # 0.018
COST = ACTUAL_IN * IN_PRICE + MAX_TOKENS * OUT_PRICE  # 0.011
SLOW_LATENCY = 1.5  # long enough that a burst overlaps even on a loaded machine
FORMATS = ["openai", "anthropic", "bedrock"]
LEVELS = ["key", "user", "team", "org"]
PRICES = {"input_cost_per_token": float(IN_PRICE), "output_cost_per_token": float(OUT_PRICE)}


def model_list() -> list[dict[str, Any]]:
    return [
        {"model_name": "fake-a", "litellm_params": {"model": "fake/a"}, "model_info": PRICES},
        {"model_name": "fake-b", "litellm_params": {"model": "fake/b"}, "model_info": PRICES},
        {
            "model_name": "fake-slow",
            "litellm_params": {"model": "fake/slow", "mock_latency": SLOW_LATENCY},
            "model_info": PRICES,
        },
        {"model_name": "other-model", "litellm_params": {"model": "fake/other"}, "model_info": PRICES},
    ]


def config(**general: Any) -> dict[str, Any]:
    litellm = general.pop("litellm_settings", {})
    router = general.pop("router_settings", None)
    out: dict[str, Any] = {
        "model_list": model_list(),
        "general_settings": {"master_key": MASTER, "database_url": "memory", **general},
        "litellm_settings": litellm,
    }
    if router is not None:
        out["router_settings"] = router
    return out


@pytest.fixture(scope="module")
def gw() -> Iterator[str]:
    with gateway(config()) as url:
        yield url


# ---------------------------------------------------------------------------------------------
# Admin helpers
# ---------------------------------------------------------------------------------------------


def admin(base: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {MASTER}"}
    if body is None:
        resp = httpx.get(f"{base}{path}", headers=headers, timeout=10)
    else:
        resp = httpx.post(f"{base}{path}", json=body, headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    result: dict[str, Any] = resp.json()
    return result


def new_key(base: str, **fields: Any) -> str:
    key: str = admin(base, "/key/generate", fields)["key"]
    return key


def key_at(base: str, level: str, fields: dict[str, Any]) -> str:
    """A key whose ``level`` entity (key, user, team or org) carries ``fields``; nothing else does."""
    if level == "key":
        return new_key(base, **fields)
    if level == "user":
        user = admin(base, "/user/new", {**fields, "auto_create_key": False})["user_id"]
        return new_key(base, user_id=user)
    if level == "team":
        team = admin(base, "/team/new", fields)["team_id"]
        return new_key(base, team_id=team)
    org = admin(base, "/organization/new", {"organization_alias": "o", **fields})["organization_id"]
    team = admin(base, "/team/new", {"organization_id": org})["team_id"]
    return new_key(base, team_id=team)


# ---------------------------------------------------------------------------------------------
# One request in each client format, reduced to an ``Outcome``
# ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    ok: bool
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = ""
    kind: str = ""  # the SDK's error class / Bedrock error code


def _openai(base: str, key: str, model: str, text: str, max_tokens: int) -> Outcome:
    client = openai.OpenAI(api_key=key, base_url=f"{base}/v1", max_retries=0)
    try:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": text}], max_tokens=max_tokens
        )
    except openai.APIStatusError as exc:
        return Outcome(False, exc.status_code, dict(exc.response.headers), str(exc), type(exc).__name__)
    raw.parse()
    return Outcome(True, raw.status_code, dict(raw.headers))


def _anthropic(base: str, key: str, model: str, text: str, max_tokens: int) -> Outcome:
    client = anthropic.Anthropic(api_key=key, base_url=base, max_retries=0)
    try:
        raw = client.messages.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": text}], max_tokens=max_tokens
        )
    except anthropic.APIStatusError as exc:
        return Outcome(False, exc.status_code, dict(exc.response.headers), str(exc), type(exc).__name__)
    raw.parse()
    return Outcome(True, raw.status_code, dict(raw.headers))


def bedrock_client(base: str, key: str) -> Any:
    return native_bedrock_client(f"{base}/bedrock", key)


_BEDROCK: dict[tuple[str, str], Any] = {}
_BEDROCK_LOCK = threading.Lock()


def cached_bedrock(base: str, key: str) -> Any:
    with _BEDROCK_LOCK:  # client creation is not thread-safe; calls on one client are
        client = _BEDROCK.get((base, key))
        if client is None:
            client = _BEDROCK[(base, key)] = bedrock_client(base, key)
    return client


def warm(fmt: str, base: str, key: str) -> None:
    """Create a burst's clients first: boto3 takes long enough to serialise the burst."""
    if fmt == "bedrock":
        cached_bedrock(base, key)


def _bedrock(base: str, key: str, model: str, text: str, max_tokens: int) -> Outcome:
    client = cached_bedrock(base, key)
    try:
        resp = client.converse(
            modelId=model,
            messages=[{"role": "user", "content": [{"text": text}]}],
            inferenceConfig={"maxTokens": max_tokens},
        )
    except ClientError as exc:
        meta = exc.response["ResponseMetadata"]
        return Outcome(
            False, int(meta["HTTPStatusCode"]), dict(meta.get("HTTPHeaders", {})),
            str(exc.response["Error"].get("Message", "")), str(exc.response["Error"]["Code"]),
        )
    meta = resp["ResponseMetadata"]
    return Outcome(True, int(meta["HTTPStatusCode"]), dict(meta["HTTPHeaders"]))


SENDERS: dict[str, Callable[[str, str, str, str, int], Outcome]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "bedrock": _bedrock,
}
THROTTLED = {"openai": "RateLimitError", "anthropic": "RateLimitError", "bedrock": "ThrottlingException"}


def send(
    fmt: str, base: str, key: str, model: str = "fake-a", text: str = TEXT, max_tokens: int = MAX_TOKENS
) -> Outcome:
    return SENDERS[fmt](base, key, model, text, max_tokens)


def burst(n: int, call: Callable[[], Outcome]) -> list[Outcome]:
    """Run ``call`` ``n`` times at once (threads released together)."""
    start = threading.Barrier(n)
    results: list[Outcome | None] = [None] * n

    def run(i: int) -> None:
        start.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def assert_throttled(fmt: str, outcome: Outcome, limit_type: str) -> None:
    assert not outcome.ok
    assert outcome.status == 429, outcome
    assert outcome.kind == THROTTLED[fmt], outcome
    assert limit_type in outcome.message, outcome.message
    assert "Retry after" in outcome.message or "in flight" in outcome.message
    if fmt != "bedrock":  # the Bedrock error renderer drops the refusal's headers (see report)
        assert int(outcome.headers["retry-after"]) >= 1


# ---------------------------------------------------------------------------------------------
# Scenario 1: every limit kind, at every level and in every format
# ---------------------------------------------------------------------------------------------

ADMITTED = 3  # each sequential limit below admits exactly this many requests
# Sequential limits: after k settled requests the window holds k·actual; the next is admitted iff
# k·actual < limit, so limit = n·actual admits exactly n.
SEQUENTIAL: dict[str, tuple[dict[str, Any], str]] = {
    "rpm": ({"rpm_limit": ADMITTED}, "rpm"),
    "tpm": ({"tpm_limit": ADMITTED * (ACTUAL_IN + MAX_TOKENS)}, "Limit type: tpm"),
    "input_tpm": ({"input_tpm_limit": ADMITTED * ACTUAL_IN}, "input_tpm"),
    "output_tpm": ({"output_tpm_limit": ADMITTED * MAX_TOKENS}, "output_tpm"),
    "model_rpm": ({"model_rpm_limit": {"fake-a": ADMITTED}}, "rpm for model fake-a"),
    "model_tpm": (
        {"model_tpm_limit": {"fake-a": ADMITTED * (ACTUAL_IN + MAX_TOKENS)}}, "tpm for model fake-a"
    ),
}


def check_sequential(fmt: str, base: str, key: str, kind: str) -> None:
    _, limit_type = SEQUENTIAL[kind]
    outcomes = [send(fmt, base, key) for _ in range(ADMITTED + 1)]
    assert [o.ok for o in outcomes] == [True] * ADMITTED + [False], outcomes
    assert_throttled(fmt, outcomes[-1], limit_type)
    if kind.startswith("model_"):
        # The per-model limit binds only its model.
        assert send(fmt, base, key, model="fake-b").ok


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("kind", list(SEQUENTIAL))
def test_limit_refuses_at_threshold_per_level(gw: str, level: str, kind: str) -> None:
    key = key_at(gw, level, SEQUENTIAL[kind][0])
    check_sequential("openai", gw, key, kind)


@pytest.mark.parametrize("fmt", ["anthropic", "bedrock"])
@pytest.mark.parametrize("kind", list(SEQUENTIAL))
def test_limit_refuses_at_threshold_per_format(gw: str, fmt: str, kind: str) -> None:
    key = key_at(gw, "team" if kind.startswith("model") else "key", SEQUENTIAL[kind][0])
    check_sequential(fmt, gw, key, kind)


@pytest.mark.parametrize(("level", "fmt"), [(lv, FORMATS[i % 3]) for i, lv in enumerate(LEVELS)])
def test_max_parallel_per_level(gw: str, level: str, fmt: str) -> None:
    key = key_at(gw, level, {"max_parallel_requests": 2})
    warm(fmt, gw, key)
    outcomes = burst(3, lambda: send(fmt, gw, key, model="fake-slow"))
    assert sorted(o.ok for o in outcomes) == [False, True, True], outcomes
    refused = next(o for o in outcomes if not o.ok)
    assert_throttled(fmt, refused, "Max parallel request limit reached")
    # Slots are released when the requests end.
    assert send(fmt, gw, key, model="fake-a").ok


def test_openai_refusal_and_success_headers(gw: str) -> None:
    key = new_key(gw, rpm_limit=2, tpm_limit=1000)
    first = send("openai", gw, key)
    assert first.ok
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-limit-tokens"] == "1000"
    assert first.headers["x-ratelimit-remaining-tokens"] == str(1000 - EST_IN - MAX_TOKENS)
    second = send("openai", gw, key)
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    # The first request settled at its real usage before the second was admitted.
    used = ACTUAL_IN + MAX_TOKENS
    assert second.headers["x-ratelimit-remaining-tokens"] == str(1000 - used - EST_IN - MAX_TOKENS)
    third = send("openai", gw, key)
    assert_throttled("openai", third, "rpm")
    assert 1 <= int(third.headers["retry-after"]) <= 61
    assert third.headers["x-ratelimit-remaining-requests"] == "0"


@pytest.mark.parametrize("fmt", ["anthropic", "bedrock"])
def test_success_headers_in_other_formats(gw: str, fmt: str) -> None:
    key = new_key(gw, rpm_limit=5, tpm_limit=500)
    outcome = send(fmt, gw, key)
    assert outcome.ok
    assert outcome.headers["x-ratelimit-limit-requests"] == "5"
    assert outcome.headers["x-ratelimit-remaining-requests"] == "4"
    assert outcome.headers["x-ratelimit-limit-tokens"] == "500"
    assert outcome.headers["x-ratelimit-remaining-tokens"] == str(500 - EST_IN - MAX_TOKENS)


def test_request_larger_than_tpm_is_served_on_an_empty_window(gw: str) -> None:
    big = "word " * 40  # 50 input tokens (57 estimated) against a limit of 20
    key = new_key(gw, tpm_limit=20)
    assert send("openai", gw, key, text=big).ok
    refused = send("openai", gw, key, text=big)
    assert_throttled("openai", refused, "Limit type: tpm")
    # A retry succeeds once the first request's tokens leave the window: within a minute.
    assert 1 <= int(refused.headers["retry-after"]) <= 61


def test_limits_of_every_level_apply_together(gw: str) -> None:
    # Key allows 5/min, its team 2/min: the team's limit binds, and names the team.
    team = admin(gw, "/team/new", {"team_alias": "tight-team", "rpm_limit": 2})["team_id"]
    key = new_key(gw, team_id=team, rpm_limit=5)
    outcomes = [send("openai", gw, key) for _ in range(3)]
    assert [o.ok for o in outcomes] == [True, True, False]
    assert "team 'tight-team'" in outcomes[2].message


@pytest.fixture(scope="module")
def proxy_gw() -> Iterator[str]:
    with gateway(config(max_parallel_requests=2)) as url:
        yield url


@pytest.mark.parametrize("fmt", FORMATS)
def test_proxy_wide_max_parallel(proxy_gw: str, fmt: str) -> None:
    keys = [new_key(proxy_gw) for _ in range(3)]  # distinct keys: only the proxy entity binds
    for key in keys:
        warm(fmt, proxy_gw, key)
    pending = iter(keys)
    outcomes = burst(3, lambda: send(fmt, proxy_gw, next(pending), model="fake-slow"))
    assert sorted(o.ok for o in outcomes) == [False, True, True], outcomes
    refused = next(o for o in outcomes if not o.ok)
    assert_throttled(fmt, refused, "proxy 'proxy'")


# ---------------------------------------------------------------------------------------------
# Scenario 2: model access
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_key_model_access(gw: str, fmt: str) -> None:
    key = new_key(gw, models=["fake-*", "other-model"])
    assert send(fmt, gw, key, model="fake-a").ok
    assert send(fmt, gw, key, model="other-model").ok
    team = admin(gw, "/team/new", {"models": ["fake-a"]})["team_id"]
    narrow = new_key(gw, team_id=team, models=["fake-a"])
    denied = send(fmt, gw, narrow, model="fake-b")
    assert denied.status == 401, denied
    assert denied.kind == "AuthenticationError"
    assert "key not allowed to access model" in denied.message
    assert "fake-b" in denied.message


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_team_bounds_key(gw: str, fmt: str) -> None:
    team = admin(gw, "/team/new", {"team_alias": f"wild-{fmt}", "models": ["fake-*"]})["team_id"]
    key = new_key(gw, team_id=team)  # the key itself allows any model
    assert send(fmt, gw, key, model="fake-b").ok
    denied = send(fmt, gw, key, model="other-model")
    assert denied.status == 403, denied
    assert denied.kind == "PermissionDeniedError"
    assert "team not allowed to access model" in denied.message
    assert "other-model" in denied.message and f"team 'wild-{fmt}'" in denied.message


def test_models_endpoint_lists_only_allowed(gw: str) -> None:
    key = new_key(gw, models=["fake-*"])
    resp = httpx.get(f"{gw}/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert sorted(m["id"] for m in resp.json()["data"]) == ["fake-a", "fake-b", "fake-slow"]


# ---------------------------------------------------------------------------------------------
# Scenario 3: budgets
# ---------------------------------------------------------------------------------------------


def budget_admits(budget: Decimal) -> int:
    """Sequential requests admitted: the k-th (from 0) is admitted iff k·COST < budget."""
    return math.ceil(budget / COST)


@pytest.mark.parametrize(("level", "fmt"), [(lv, FORMATS[i % 3]) for i, lv in enumerate(LEVELS)])
def test_max_budget_refuses(gw: str, level: str, fmt: str) -> None:
    budget = Decimal("0.05")
    n = budget_admits(budget)
    assert n == 5
    key = key_at(gw, level, {"max_budget": float(budget)})
    outcomes = [send(fmt, gw, key) for _ in range(n + 1)]
    assert [o.ok for o in outcomes] == [True] * n + [False], outcomes
    refused = outcomes[-1]
    assert refused.status == 400, refused
    assert f"Budget has been exceeded! Current cost: {n * COST}, Max budget: 0.05" in refused.message


def test_spend_and_reset_visible_in_key_info(gw: str) -> None:
    key = new_key(gw, max_budget=1.0, budget_duration="1d", budgets=[{"max_budget": 0.5, "duration": "1h"}])
    assert send("openai", gw, key).ok
    info = admin(gw, f"/key/info?key={key}")["info"]
    assert info["budget_duration"] == "1d"
    assert info["budget_reset_at"] is not None
    hourly = info["budgets"][0]
    assert hourly["duration"] == "1h"
    # The 1h window is aligned like the enforcement window: it ends on the next whole hour.
    reset = hourly["reset_at"]
    assert reset.endswith(":00:00+00:00"), reset
    wait_until(
        lambda: Decimal(str(admin(gw, f"/key/info?key={key}")["info"]["spend"])) == COST,
        timeout=5,
        what="the spend settled",
    )


def test_multiple_budget_windows_the_tightest_binds(gw: str) -> None:
    key = new_key(
        gw, budgets=[{"max_budget": 1.0, "duration": "1d"}, {"max_budget": 0.04, "duration": "1h"}]
    )
    n = budget_admits(Decimal("0.04"))
    outcomes = [send("openai", gw, key) for _ in range(n + 1)]
    assert [o.ok for o in outcomes] == [True] * n + [False]
    assert "Max budget: 0.04" in outcomes[-1].message and "1h window" in outcomes[-1].message


def test_parallel_burst_overshoots_by_less_than_one_request(gw: str) -> None:
    # Reservations count in flight: of 10 simultaneous requests, each is admitted while spend +
    # the reservations before it stay below the budget (0, E, 2E, 3E < 3.5E): 4 of them. The
    # others are told requests in flight hold the budget (429), not that it was exceeded.
    budget = ESTIMATE * 3 + ESTIMATE / 2
    key = new_key(gw, max_budget=float(budget))
    outcomes = burst(10, lambda: send("openai", gw, key, model="fake-slow"))
    admitted = sum(o.ok for o in outcomes)
    assert admitted == 4, outcomes
    refused = [o for o in outcomes if not o.ok]
    assert all(o.status == 429 and "held by requests in flight" in o.message for o in refused), refused
    assert admitted * COST < budget + ESTIMATE  # the documented bound: under one reservation


def test_proxy_wide_budget() -> None:
    with gateway(config(litellm_settings={"max_budget": 0.03})) as base:
        key = new_key(base)
        other = new_key(base)
        n = budget_admits(Decimal("0.03"))
        assert n == 3
        assert send("openai", base, key).ok
        assert send("anthropic", base, other).ok
        assert send("openai", base, key).ok
        refused = send("openai", base, other)
        assert refused.status == 400
        assert "Budget has been exceeded!" in refused.message and "proxy" in refused.message


# ---------------------------------------------------------------------------------------------
# Scenario 5 (one process): Redis unreachable
# ---------------------------------------------------------------------------------------------


def test_redis_down_fallback_keeps_serving_and_readiness_says_so() -> None:
    cfg = config(router_settings={"redis_url": "redis://127.0.0.1:1/0"})
    with gateway(cfg) as base:
        key = new_key(base, rpm_limit=2)
        outcomes = [send("openai", base, key) for _ in range(3)]
        # Per-process counters still enforce the limit.
        assert [o.ok for o in outcomes] == [True, True, False]
        ready = httpx.get(f"{base}/health/readiness")
        assert ready.status_code == 200
        assert "redis_fail_mode=fallback" in ready.json()["counters"]


def test_redis_down_fail_closed_refuses() -> None:
    cfg = config(router_settings={"redis_url": "redis://127.0.0.1:1/0"}, redis_fail_mode="fail_closed")
    with gateway(cfg) as base:
        limited = new_key(base, rpm_limit=5)
        outcome = send("openai", base, limited)
        assert outcome.status == 503, outcome
        assert "rate-limit store unavailable" in outcome.message
        # A key without limits or budgets needs no counters and is still served.
        assert send("openai", base, new_key(base)).ok
        ready = httpx.get(f"{base}/health/readiness")
        assert ready.status_code == 503
        assert "fail_closed" in ready.json()["counters"]


def test_streams_hold_a_slot_until_they_end_and_settle(gw: str) -> None:
    key = new_key(gw, max_parallel_requests=1, output_tpm_limit=2 * MAX_TOKENS)
    client = openai.OpenAI(api_key=key, base_url=f"{gw}/v1", max_retries=0)
    for _ in range(2):
        stream = client.chat.completions.create(
            model="fake-a", messages=[{"role": "user", "content": TEXT}], max_tokens=MAX_TOKENS, stream=True
        )
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text == "Hello from tollgate's fake upstream!"
    refused = send("openai", gw, key)
    assert_throttled("openai", refused, "output_tpm")
