"""The response cache across replicas and tenants, what a hit costs, and a cache that is down
(issue 16), against real ``tollgate serve`` processes, real Redis and the official clients.

A hit is recorded with ``cache_hit`` and spend 0, adds nothing to the key's spend, uses no tokens
of a tpm limit and still counts in rpm. Answers are scoped to the team, else the user, else the
key. With Redis unreachable, requests are served, the failure is logged once and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.e2e.cache_clients import FORMATS, ask, embed, question, upstream_calls
from tests.e2e.cache_fixtures import (
    MASTER,
    admin,
    cache_config,
    metric,
    new_key,
    spend_row,
)
from tests.e2e.servers import free_port, gateway, process


def test_an_answer_stored_by_one_replica_is_a_hit_on_the_other(
    cache_replicas: tuple[str, str], upstream: str
) -> None:
    one, two = cache_replicas
    key = new_key(one)
    for fmt in FORMATS:
        text = question()
        before = upstream_calls(upstream, "gpt-cache")
        stored = ask(one, key, text, fmt=fmt, stream=True)
        hit = ask(two, key, text, fmt=fmt)
        assert stored.cache_key is None and hit.cache_key is not None, (stored, hit)
        assert hit.text == stored.text
        assert upstream_calls(upstream, "gpt-cache") == before + 1


def test_answers_are_scoped_to_the_team_else_the_user_else_the_key(cache_replicas: tuple[str, str]) -> None:
    base = cache_replicas[0]
    team_a = admin(base, "/team/new", {"team_alias": "cache-a"})["team_id"]
    team_b = admin(base, "/team/new", {"team_alias": "cache-b"})["team_id"]
    user = admin(base, "/user/new", {"auto_create_key": False})["user_id"]
    a1, a2 = new_key(base, team_id=team_a), new_key(base, team_id=team_a)
    b1 = new_key(base, team_id=team_b)
    u1, u2 = new_key(base, user_id=user), new_key(base, user_id=user)
    k1, k2 = new_key(base), new_key(base)
    text = question()
    for first, same, other in ((a1, a2, b1), (u1, u2, k1), (k1, k1, k2)):
        ask(base, first, text)
        assert ask(base, same, text).cache_key is not None
        assert ask(base, other, text).cache_key is None, "another tenant read a cached answer"
    # b1 and k2 stored their own answers just now: each reads only its own.
    assert ask(base, b1, text).cache_key is not None
    assert ask(base, MASTER, text).cache_key is None


def test_a_hit_costs_nothing(cache_replicas: tuple[str, str]) -> None:
    one, two = cache_replicas
    key = new_key(one)
    text = question()
    miss = ask(one, key, text, fmt="anthropic")
    asked = ((two, "openai"), (one, "bedrock"), (two, "anthropic"))
    hits = [ask(base, key, text, fmt=fmt) for base, fmt in asked]
    assert all(h.cache_key is not None for h in hits)
    paid = spend_row(one, miss.request_id)
    assert paid["cache_hit"] == "False" and Decimal(str(paid["spend"])) > 0
    for hit in hits:
        row = spend_row(one, hit.request_id)
        assert row["cache_hit"] == "True" and row["spend"] == 0, row
        assert row["model_group"] == "gpt-cache" and row["model_id"] is None
        assert row["prompt_tokens"] == paid["prompt_tokens"]  # the stored answer's usage, at no cost
    info = admin(one, f"/key/info?key={key}")["info"]
    assert Decimal(str(info["spend"])) == Decimal(str(paid["spend"]))


def test_hits_count_in_rpm_but_use_no_tpm(cache_replicas: tuple[str, str]) -> None:
    base = cache_replicas[0]
    # tpm 100: one answer's usage (15 tokens) and a fresh reservation (12 + 64) fit, but not if
    # the eight hits below had used tokens too.
    key = new_key(base, tpm_limit=100)
    text = question()
    ask(base, key, text)
    assert all(ask(base, key, text).cache_key is not None for _ in range(8))
    assert ask(base, key, question()).ok
    limited = new_key(base, rpm_limit=3)
    ask(base, limited, text)
    assert ask(base, limited, text).cache_key is not None
    assert ask(base, limited, text, fmt="bedrock").cache_key is not None
    refused = ask(base, limited, text)
    assert not refused.ok and refused.status == 429 and "rpm" in refused.error


def test_hits_and_misses_are_metrics(cache_replicas: tuple[str, str]) -> None:
    base = cache_replicas[1]
    key = new_key(base)
    hits = metric(base, "tollgate_cache_hits_total", call_type="chat", model_group="gpt-cache")
    misses = metric(base, "tollgate_cache_misses_total", call_type="chat", model_group="gpt-cache")
    text = question()
    ask(base, key, text)
    ask(base, key, text)
    ask(base, key, text, fmt="anthropic", stream=True)
    labels = {"call_type": "chat", "model_group": "gpt-cache"}
    assert metric(base, "tollgate_cache_hits_total", **labels) == hits + 2
    assert metric(base, "tollgate_cache_misses_total", **labels) == misses + 1


# ---- the cache's own settings: type local, mode default_off, supported_call_types --------------


@pytest.fixture(scope="module")
def local_off(upstream: str) -> Iterator[str]:
    params = {"type": "local", "mode": "default_off", "supported_call_types": ["acompletion"]}
    with gateway(cache_config(upstream, "memory", params)) as url:
        yield url


def test_default_off_caches_only_requests_that_opt_in(local_off: str, upstream: str) -> None:
    text = question()
    before = upstream_calls(upstream, "gpt-cache")
    assert ask(local_off, MASTER, text).cache_key is None
    assert ask(local_off, MASTER, text).cache_key is None
    assert upstream_calls(upstream, "gpt-cache") == before + 2
    ask(local_off, MASTER, text, fmt="anthropic", cache={"use-cache": True})
    hit = ask(local_off, MASTER, text, fmt="bedrock", cache={"use-cache": True})
    assert hit.cache_key is not None
    assert upstream_calls(upstream, "gpt-cache") == before + 3
    assert httpx.get(f"{local_off}/cache/ping", headers={"Authorization": f"Bearer {MASTER}"}).json()[
        "cache_type"
    ] == "local"


def test_call_types_not_listed_are_not_cached(local_off: str) -> None:
    inputs = [question()]
    embed(local_off, MASTER, inputs, cache={"use-cache": True})
    assert "x-litellm-cache-key" not in embed(local_off, MASTER, inputs, cache={"use-cache": True}).headers


# ---- Redis down ---------------------------------------------------------------------------------


def test_requests_are_served_while_the_cache_is_down(upstream: str, tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there: every Redis command fails at once
    config = cache_config(upstream, "memory", {"type": "redis", "host": "127.0.0.1", "port": closed})
    port = free_port()
    path = tmp_path / "down.yaml"
    import yaml

    path.write_text(yaml.safe_dump(config))
    args = ["serve", "--config", str(path), "--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with process(args, f"{base}/health/liveliness") as log:
        text = question()
        for fmt in FORMATS:
            for stream in (False, True):
                answer = ask(base, MASTER, text, fmt=fmt, stream=stream)
                assert answer.ok and answer.cache_key is None and text in answer.text, answer
        assert embed(base, MASTER, [text]).parse().data
        assert metric(base, "tollgate_cache_errors_total", operation="read") >= 1
        warnings = [line for line in log.read_text().splitlines() if "response cache unavailable" in line]
        assert len(warnings) == 1, warnings
