"""Deployment choice: weights, caps, pre-call context checks, and each LiteLLM strategy."""

from __future__ import annotations

import random
from collections import Counter
from decimal import Decimal
from typing import Any

from tollgate.config import Deployment, ModelInfo, Price
from tollgate.routing.cooldowns import DeploymentStats
from tollgate.routing.strategies import choose, lowest_order, screen


def dep(id_: str, **kw: Any) -> Deployment:
    return Deployment(
        id=id_, model_name="g", provider="fake", upstream_model=id_, litellm_model=f"fake/{id_}", **kw
    )


def test_weighted_shuffle_9_to_1() -> None:
    deps = [dep("a", weight=9), dep("b", weight=1)]
    rng = random.Random(1234)
    picks = Counter(choose("simple-shuffle", deps, {}, rng).id for _ in range(2000))
    # Expected 1800 ± 3σ (σ = sqrt(2000·0.9·0.1) ≈ 13.4).
    assert 1760 <= picks["a"] <= 1840
    assert picks["a"] + picks["b"] == 2000


def test_shuffle_uses_rpm_when_no_weight_and_uniform_otherwise() -> None:
    rng = random.Random(7)
    by_rpm = Counter(
        choose("simple-shuffle", [dep("a", rpm=300), dep("b", rpm=100)], {}, rng).id for _ in range(2000)
    )
    assert 1430 <= by_rpm["a"] <= 1570
    uniform = Counter(choose("simple-shuffle", [dep("a"), dep("b")], {}, rng).id for _ in range(2000))
    assert 930 <= uniform["a"] <= 1070


def test_screen_skips_capped_cooling_and_too_small() -> None:
    deps = [
        dep("rpm", rpm=10),
        dep("tpm", tpm=1000),
        dep("cool"),
        dep("small", info=ModelInfo(max_input_tokens=100)),
        dep("ok"),
    ]
    stats = {
        "rpm": DeploymentStats(requests=10),
        "tpm": DeploymentStats(tokens=950),
        "cool": DeploymentStats(cooldown_until=105.0),
    }
    s = screen(deps, stats, now=100.0, estimated_tokens=150, pre_call_checks=True)
    assert [d.id for d in s.eligible] == ["ok"]
    assert [d.id for d in s.at_cap] == ["rpm", "tpm"]
    assert [d.id for d in s.cooling] == ["cool"]
    assert [d.id for d in s.too_small] == ["small"]
    # Without pre-call checks the small deployment stays eligible; after the cooldown, so does "cool".
    s2 = screen(deps, stats, now=106.0, estimated_tokens=150, pre_call_checks=False)
    assert [d.id for d in s2.eligible] == ["cool", "small", "ok"]


def test_least_busy_usage_latency_and_cost() -> None:
    rng = random.Random(0)
    deps = [dep("a"), dep("b"), dep("c")]
    busy = {
        "a": DeploymentStats(in_flight=3),
        "b": DeploymentStats(in_flight=1),
        "c": DeploymentStats(in_flight=2),
    }
    assert choose("least-busy", deps, busy, rng).id == "b"
    used = {"a": DeploymentStats(tokens=10), "b": DeploymentStats(tokens=50), "c": DeploymentStats(tokens=5)}
    assert choose("usage-based-routing-v2", deps, used, rng).id == "c"
    lat = {
        "a": DeploymentStats(latency=0.5),
        "b": DeploymentStats(latency=0.2),
        "c": DeploymentStats(latency=0.21),
    }
    assert choose("latency-based-routing", deps, lat, rng).id == "b"
    picked = {
        choose("latency-based-routing", deps, lat, rng, {"lowest_latency_buffer": 0.1}).id for _ in range(200)
    }
    assert picked == {"b", "c"}
    priced = [
        dep("x", info=ModelInfo(price=Price(Decimal("0.00001"), Decimal("0.00003")))),
        dep("y", info=ModelInfo(price=Price(Decimal("0.000001"), Decimal("0.000002")))),
        dep("z"),
    ]
    assert choose("cost-based-routing", priced, {}, rng).id == "y"


def test_lowest_order_first() -> None:
    deps = [dep("a", order=2), dep("b", order=1), dep("c")]
    assert [d.id for d in lowest_order(deps)] == ["b"]
    assert [d.id for d in lowest_order([dep("a"), dep("c")])] == ["a", "c"]
