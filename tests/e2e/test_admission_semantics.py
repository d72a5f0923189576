"""Admission as LiteLLM users expect it (issue 12) and nothing reached around it (issue 13, items 3
and 10), end to end through the official SDKs against a real ``tollgate serve``.

Budgets admit while spend + in-flight reservations are below them (``budget_admission: strict``
keeps the worst-case rule); token limits admit while the window is below them, so a limit smaller
than ``max_tokens`` still serves; per-model limits bind whatever name the client uses; every model
group a request may fall back to is checked for access and limits; windows and their real resets
show in the info routes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.servers import gateway
from tests.e2e.test_enforcement import (
    COST,
    ESTIMATE,
    IN_PRICE,
    OUT_PRICE,
    PRICES,
    admin,
    burst,
    config,
    new_key,
    send,
    warm,
)
from tests.polling import wait_until

GREEDY_OUTPUT = 25  # 5× MAX_TOKENS: an upstream that ignores max_tokens
GREEDY_COST = 1 * IN_PRICE + GREEDY_OUTPUT * OUT_PRICE  # 0.051
UPSTREAM_ID = "us.anthropic.claude-fake-v1"


def semantics_config(**general: Any) -> dict[str, Any]:
    cfg = config(**general)
    cfg["model_list"] += [
        {"model_name": "fake-broken", "litellm_params": {"model": "fake/broken", "mock_error_status": 500},
         "model_info": PRICES},
        {"model_name": "fake-greedy",
         "litellm_params": {"model": "fake/greedy", "mock_output_tokens": GREEDY_OUTPUT, "mock_latency": 1.5},
         "model_info": PRICES},
        {"model_name": "fake-small", "litellm_params": {"model": "fake/small"},
         "model_info": {**PRICES, "max_input_tokens": 50}},
        {"model_name": "claude-group", "litellm_params": {"model": f"fake/{UPSTREAM_ID}"},
         "model_info": PRICES},
    ]
    cfg["router_settings"] = {
        "num_retries": 0,
        "enable_pre_call_checks": True,
        "default_fallbacks": ["fake-b"],
        "context_window_fallbacks": [{"fake-small": ["fake-b"]}],
        "model_group_alias": {"sonnet": "claude-group"},
    }
    return cfg


@pytest.fixture(scope="module")
def gw() -> Iterator[str]:
    with gateway(semantics_config()) as url:
        yield url


@pytest.fixture(scope="module")
def strict_gw() -> Iterator[str]:
    with gateway(semantics_config(budget_admission="strict")) as url:
        yield url


def chat(base: str, key: str, model: str, **extra: Any) -> httpx.Response:
    """A raw OpenAI chat call, so the test sees status and headers whatever they are."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    return httpx.post(f"{base}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"},
                      timeout=30)


# ---------------------------------------------------------------------------------------------
# Budgets
# ---------------------------------------------------------------------------------------------


def test_the_first_request_under_budget_is_served_even_if_it_ends_over(gw: str) -> None:
    key = new_key(gw, max_budget=0.005)  # below one request's worst case (0.018) and its cost (0.011)
    assert send("openai", gw, key).ok
    refused = send("openai", gw, key)
    assert refused.status == 400, refused
    assert f"Budget has been exceeded! Current cost: {COST}, Max budget: 0.005" in refused.message


def test_strict_budget_admission_refuses_a_worst_case_that_cannot_fit(strict_gw: str) -> None:
    key = new_key(strict_gw, max_budget=0.005)
    refused = send("openai", strict_gw, key)
    assert refused.status == 400, refused
    assert "Budget would be exceeded by this request (budget_admission: strict)" in refused.message
    assert "Budget has been exceeded" not in refused.message  # nothing has been spent


def test_usage_beyond_the_estimate_overshoots_by_the_documented_bound(gw: str) -> None:
    # Billed 5× the reserved output. 10 at once against $0.1: admitted while reservations are
    # below it (0, E, … 5E < 0.1 ≤ 6E): 6. The bound (docs/enforcement.md): the last one's cost
    # plus the excess over its reservation of each request in flight when it was admitted.
    budget = Decimal("0.1")
    key = new_key(gw, max_budget=float(budget))
    warm("openai", gw, key)
    outcomes = burst(10, lambda: send("openai", gw, key, model="fake-greedy"))
    admitted = sum(o.ok for o in outcomes)
    assert admitted == math.ceil(budget / ESTIMATE) == 6, outcomes
    deadline = time.monotonic() + 10
    expected = admitted * GREEDY_COST
    while (spend := Decimal(str(admin(gw, f"/key/info?key={key}")["info"]["spend"]))) != expected:
        assert time.monotonic() < deadline, f"spend {spend} never reached {expected}"
        time.sleep(0.1)  # polling the batched spend writer
    bound = GREEDY_COST + (admitted - 1) * (GREEDY_COST - ESTIMATE)
    assert spend - budget <= bound
    assert send("openai", gw, key).status == 400


# ---------------------------------------------------------------------------------------------
# Token limits
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [{"tpm_limit": 1000}, {"model_tpm_limit": {"fake-a": 1000}}])
def test_a_tpm_limit_smaller_than_max_tokens_still_serves(gw: str, limit: dict[str, Any]) -> None:
    # No max_tokens: the reservation expects a typical answer, not 1,024 tokens that can never fit.
    key = new_key(gw, **limit)
    client = openai.OpenAI(api_key=key, base_url=f"{gw}/v1", max_retries=0)
    for _ in range(3):
        reply = client.chat.completions.create(model="fake-a", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content


# ---------------------------------------------------------------------------------------------
# Per-model limits under every name
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("keyed_by", [UPSTREAM_ID, "sonnet", "claude-group"])
def test_per_model_limits_bind_the_group_under_every_name(gw: str, keyed_by: str) -> None:
    key = new_key(gw, model_rpm_limit={keyed_by: 2})
    assert send("openai", gw, key, model="sonnet").ok
    assert send("bedrock", gw, key, model=UPSTREAM_ID).ok
    refused = send("openai", gw, key, model="claude-group")
    assert refused.status == 429, refused
    assert "rpm for model claude-group" in refused.message


# ---------------------------------------------------------------------------------------------
# Fallbacks never reach around model access or limits
# ---------------------------------------------------------------------------------------------


def test_request_fallbacks_do_not_reach_a_model_the_key_may_not_use(gw: str) -> None:
    narrow = new_key(gw, models=["fake-broken"])
    answered = chat(gw, narrow, "fake-broken", fallbacks=["fake-b"])
    assert answered.status_code >= 500, answered.text
    assert answered.headers.get("x-litellm-model-group") != "fake-b"
    wide = new_key(gw, models=["fake-broken", "fake-b"])
    served = chat(gw, wide, "fake-broken", fallbacks=["fake-b"])
    assert served.status_code == 200, served.text
    assert served.headers["x-litellm-model-group"] == "fake-b"


def test_default_fallbacks_do_not_reach_a_model_the_key_may_not_use(gw: str) -> None:
    narrow = new_key(gw, models=["fake-broken"])
    assert chat(gw, narrow, "fake-broken").status_code >= 500
    team = admin(gw, "/team/new", {"models": ["fake-broken"]})["team_id"]
    in_team = new_key(gw, team_id=team)  # the key allows anything; its team does not
    assert chat(gw, in_team, "fake-broken").status_code >= 500
    served = chat(gw, new_key(gw), "fake-broken")
    assert (served.status_code, served.headers.get("x-litellm-model-group")) == (200, "fake-b")


def test_context_window_fallbacks_do_not_reach_a_model_the_key_may_not_use(gw: str) -> None:
    long_prompt = {"messages": [{"role": "user", "content": "word " * 200}]}
    narrow = new_key(gw, models=["fake-small"])
    refused = httpx.post(f"{gw}/v1/chat/completions", json={"model": "fake-small", **long_prompt},
                         headers={"Authorization": f"Bearer {narrow}"}, timeout=30)
    assert refused.status_code == 400, refused.text
    wide = new_key(gw, models=["fake-small", "fake-b"])
    served = httpx.post(f"{gw}/v1/chat/completions", json={"model": "fake-small", **long_prompt},
                        headers={"Authorization": f"Bearer {wide}"}, timeout=30)
    assert (served.status_code, served.headers.get("x-litellm-model-group")) == (200, "fake-b")


def test_a_fallback_whose_per_model_limit_is_full_is_not_reached(gw: str) -> None:
    key = new_key(gw, model_rpm_limit={"fake-b": 1})
    assert chat(gw, key, "fake-b").status_code == 200  # fake-b's one request this minute
    answered = chat(gw, key, "fake-broken", fallbacks=["fake-b"])
    assert answered.status_code >= 500, answered.text
    assert chat(gw, key, "fake-b").status_code == 429


# ---------------------------------------------------------------------------------------------
# Windows in the info routes
# ---------------------------------------------------------------------------------------------


def next_monday(now: datetime) -> datetime:
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + timedelta(days=7 - midnight.weekday())


def test_info_routes_show_the_current_window_and_its_real_reset(gw: str) -> None:
    user = admin(gw, "/user/new", {"max_budget": 5.0, "budget_duration": "30d", "auto_create_key": False})
    team = admin(gw, "/team/new", {"max_budget": 5.0, "budget_duration": "1w"})["team_id"]
    key = new_key(gw, user_id=user["user_id"], team_id=team, max_budget=1.0, budget_duration="7d",
                  budgets=[{"max_budget": 0.5, "duration": "1d"}])
    # (Spend from earlier windows cannot be made here: nobody writes ``spend``, admin.matrix.)
    before = datetime.now(UTC)
    assert send("openai", gw, key).ok
    info = admin(gw, f"/key/info?key={key}")["info"]
    after = datetime.now(UTC)
    assert info["budget_reset_at"] in {next_monday(before).isoformat(), next_monday(after).isoformat()}
    assert Decimal(str(info["spend"])) == COST  # this week's
    # The all-time total is the entity's record, written with the batched spend log.
    wait_until(lambda: Decimal(str(admin(gw, f"/key/info?key={key}")["info"]["lifetime_spend"])) == COST,
               what="the key's lifetime spend")
    daily = info["budgets"][0]
    assert Decimal(str(daily["spend"])) == COST
    tomorrow = (before + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert daily["reset_at"] == tomorrow.isoformat() or after.date() != before.date()
    user_info = admin(gw, f"/user/info?user_id={user['user_id']}")["user_info"]
    first_of_next = (before.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0,
                                                                         microsecond=0)
    assert user_info["budget_reset_at"] == first_of_next.isoformat() or after.month != before.month
    assert Decimal(str(user_info["spend"])) == COST
    team_info = admin(gw, f"/team/info?team_id={team}")["team_info"]
    assert team_info["budget_reset_at"] in {next_monday(before).isoformat(), next_monday(after).isoformat()}

