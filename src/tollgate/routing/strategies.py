"""Choosing one deployment of a model group: filters, then LiteLLM's routing strategies.

Pure functions over deployments and their ``DeploymentStats``; randomness comes from the caller's
``random.Random``. ``screen`` removes deployments cooling down, at their rpm/tpm cap, or (with
pre-call checks) too small for the input; ``choose`` applies the strategy. Imports only
``config`` and this package.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tollgate.config import Deployment
from tollgate.routing.cooldowns import IDLE, DeploymentStats

__all__ = ["LATENCY_TTL", "Screened", "choose", "screen"]

LATENCY_TTL = 3600.0  # LiteLLM's default ttl for latency samples, seconds


@dataclass(frozen=True, slots=True)
class Screened:
    """Deployments that may take the request now, and why the others may not."""

    eligible: tuple[Deployment, ...]
    cooling: tuple[Deployment, ...] = ()
    at_cap: tuple[Deployment, ...] = ()
    too_small: tuple[Deployment, ...] = ()


def at_cap(dep: Deployment, stats: DeploymentStats, estimated_tokens: int) -> bool:
    if dep.rpm is not None and stats.requests >= dep.rpm:
        return True
    # LiteLLM's usage-based v2 rule: skip when this request's tokens would pass the cap.
    return dep.tpm is not None and stats.tokens + estimated_tokens > dep.tpm


def screen(
    deployments: Sequence[Deployment],
    stats: Mapping[str, DeploymentStats],
    now: float,
    estimated_tokens: int,
    pre_call_checks: bool,
) -> Screened:
    eligible: list[Deployment] = []
    cooling: list[Deployment] = []
    capped: list[Deployment] = []
    small: list[Deployment] = []
    for dep in deployments:
        st = stats.get(dep.id, IDLE)
        if st.cooling(now):
            cooling.append(dep)
        elif (
            pre_call_checks
            and dep.info.max_input_tokens is not None
            and dep.info.max_input_tokens < estimated_tokens
        ):
            small.append(dep)
        elif at_cap(dep, st, estimated_tokens):
            capped.append(dep)
        else:
            eligible.append(dep)
    return Screened(tuple(eligible), tuple(cooling), tuple(capped), tuple(small))


def lowest_order(deployments: Sequence[Deployment]) -> list[Deployment]:
    """LiteLLM ``order``: only the lowest order present is used; deployments without one come last."""
    orders = [d.order for d in deployments if d.order is not None]
    if not orders:
        return list(deployments)
    best = min(orders)
    return [d for d in deployments if d.order == best]


def choose(
    strategy: str,
    deployments: Sequence[Deployment],
    stats: Mapping[str, DeploymentStats],
    rng: random.Random,
    args: Mapping[str, Any] | None = None,
) -> Deployment:
    """One deployment out of a non-empty list, by the named LiteLLM routing strategy."""
    if len(deployments) == 1:
        return deployments[0]
    if strategy == "least-busy":
        return _lowest(deployments, lambda d: float(stats.get(d.id, IDLE).in_flight), rng)
    if strategy in ("usage-based-routing", "usage-based-routing-v2"):
        return _lowest(deployments, lambda d: float(stats.get(d.id, IDLE).tokens), rng)
    if strategy == "latency-based-routing":
        return _latency(deployments, stats, rng, args or {})
    if strategy == "cost-based-routing":
        return _lowest(deployments, _cost, rng)
    return shuffle(deployments, rng)


def shuffle(deployments: Sequence[Deployment], rng: random.Random) -> Deployment:
    """simple-shuffle: weighted by ``weight``, else by ``rpm``, else by ``tpm``, else uniform."""
    for attr in ("weight", "rpm", "tpm"):
        if any(getattr(d, attr) is not None for d in deployments):
            weights = [float(getattr(d, attr) or 0) for d in deployments]
            if sum(weights) > 0:
                return rng.choices(list(deployments), weights=weights, k=1)[0]
            break
    return deployments[rng.randrange(len(deployments))]


def _lowest(deployments: Sequence[Deployment], key: Any, rng: random.Random) -> Deployment:
    scores = [key(d) for d in deployments]
    best = min(scores)
    ties = [d for d, s in zip(deployments, scores, strict=True) if s == best]
    return ties[rng.randrange(len(ties))]


def _cost(dep: Deployment) -> float:
    price = dep.info.price
    if not price.known:
        return math.inf  # unknown price: never preferred over a priced deployment
    return float((price.input or 0) + (price.output or 0))


def _latency(
    deployments: Sequence[Deployment],
    stats: Mapping[str, DeploymentStats],
    rng: random.Random,
    args: Mapping[str, Any],
) -> Deployment:
    # Unsampled deployments count as 0 s so each gets measured (LiteLLM does the same).
    scores = [stats.get(d.id, IDLE).latency or 0.0 for d in deployments]
    best = min(scores)
    buffer = float(args.get("lowest_latency_buffer", 0) or 0)
    limit = best * (1 + buffer) if buffer > 0 else best
    near = [d for d, s in zip(deployments, scores, strict=True) if s <= limit]
    return near[rng.randrange(len(near))]


def latency_ttl(strategy: str, args: Mapping[str, Any]) -> float | None:
    """The latency-sample ttl to read, or ``None`` when the strategy ignores latency."""
    if strategy != "latency-based-routing":
        return None
    ttl = args.get("ttl", LATENCY_TTL)
    return float(ttl) if isinstance(ttl, int | float) else LATENCY_TTL
