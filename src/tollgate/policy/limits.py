"""Rate limits: which windows and slots a request counts in, per entity and per model group, and
how a refusal reads.

Per entity (and per model group, from ``Entity.model_limits``) a request is counted in up to four
sliding one-minute windows — ``rpm`` (1 per request), ``tpm`` (input estimate + expected output),
``input_tpm`` and ``output_tpm`` — and takes one ``max_parallel`` slot. Only configured limits
are counted. A per-model limit applies whatever name the client used: an entry keyed by the model
group, by an alias of it or by one of its deployments' upstream ids binds that group, and its
counters are the group's (so every spelling shares them); several entries for one group combine
to the tightest of each limit. Per-model limits of a fallback group are *optional* checks: a full
one drops that group from the request's plan instead of refusing the request.
May import: ``auth.principal``, ``call``, ``errors``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Literal

from tollgate.auth.principal import Entity, Limits
from tollgate.call import Destination
from tollgate.errors import RateLimited

Metric = Literal["rpm", "tpm", "input_tpm", "output_tpm"]
_METRIC_KEYS: dict[Metric, str] = {"rpm": "req", "tpm": "tok", "input_tpm": "in", "output_tpm": "out"}


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A window a request counts in; what it adds depends on the request (``Amounts``)."""

    entity: Entity
    metric: Metric
    model: str | None  # the model group of a per-model limit
    key: str
    limit: int
    group: int = 0  # 0: required; k > 0: the k-th destination of the route (an optional fallback)


@dataclass(frozen=True, slots=True)
class Amounts:
    """What one request adds to each kind of window."""

    input_tokens: int
    output_tokens: int

    def of(self, metric: Metric) -> int:
        if metric == "rpm":
            return 1
        if metric == "tpm":
            return self.input_tokens + self.output_tokens
        return self.input_tokens if metric == "input_tpm" else self.output_tokens


@dataclass(frozen=True, slots=True)
class SlotSpec:
    entity: Entity
    model: str | None
    key: str
    limit: int
    group: int = 0


def entity_key(entity: Entity) -> str:
    return f"{entity.kind}:{entity.id}"


def per_model(
    entity: Entity, destination: Destination, resolve: Callable[[str], str | None]
) -> Limits | None:
    """The entity's per-model limits that bind ``destination`` (see the module docstring)."""
    found: list[Limits] = []
    for name, limits in entity.model_limits.items():
        if name == destination.name or name == destination.group or resolve(name) == destination.group:
            found.append(limits)
    if len(found) < 2:
        return found[0] if found else None
    return Limits(*(_tightest(getattr(f, field.name) for f in found) for field in fields(Limits)))


def _tightest(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def counted(
    entity: Entity, limits: Limits, model: str | None, group: int, windows: list[WindowSpec],
    slots: list[SlotSpec],
) -> None:
    """Append the windows and slot ``limits`` count a request in (``model`` set: per-model)."""
    base = f"{entity.kind}:{entity.id}"
    suffix = f":m:{model}" if model is not None else ""
    for metric, short in _METRIC_KEYS.items():
        limit: int | None = getattr(limits, metric)  # a metric is named as its Limits field
        if limit is not None:
            windows.append(WindowSpec(entity, metric, model, f"w:{base}:{short}{suffix}", limit, group))
    if limits.max_parallel is not None:
        # "slot:", not the "p:" sorted sets of earlier versions: an upgrade never reads one as the other.
        slots.append(SlotSpec(entity, model, f"slot:{base}{suffix}", limits.max_parallel, group))


def rate_headers(
    specs: tuple[WindowSpec, ...], amounts: tuple[int, ...], used: tuple[int, ...]
) -> dict[str, str]:
    """OpenAI-style ``x-ratelimit-*`` headers for the tightest required request and token limits."""
    headers: dict[str, str] = {}
    tightest: dict[str, tuple[int, int]] = {}
    for spec, amount, before in zip(specs, amounts, used, strict=False):
        if spec.group:
            continue
        family = "requests" if spec.metric == "rpm" else "tokens"
        remaining = max(0, spec.limit - before - amount)
        if family not in tightest or remaining < tightest[family][1]:
            tightest[family] = (spec.limit, remaining)
    for family, (limit, remaining) in tightest.items():
        headers[f"x-ratelimit-limit-{family}"] = str(limit)
        headers[f"x-ratelimit-remaining-{family}"] = str(remaining)
    return headers


def window_refusal(spec: WindowSpec, current: int, retry_after: float, window_seconds: int) -> RateLimited:
    """The window is full: its sum (requests in flight included) has reached the limit. A retry
    succeeds once enough of it has left the window, which ``retry_after`` says (to the second)."""
    name = spec.entity.alias or spec.entity.id
    scope = f" for model {spec.model}" if spec.model else ""
    seconds = max(1, math.ceil(retry_after))
    unit = "requests" if spec.metric == "rpm" else "tokens"
    message = (
        f"Rate limit exceeded for {spec.entity.kind} '{name}'. Limit type: {spec.metric}{scope}. "
        f"Current limit: {spec.limit}, Remaining: 0 ({current} {unit} counted in the last "
        f"{window_seconds} s, requests in flight included). Retry after {seconds} seconds."
    )
    family = "requests" if spec.metric == "rpm" else "tokens"
    headers = {
        "retry-after": str(seconds),
        f"x-ratelimit-limit-{family}": str(spec.limit),
        f"x-ratelimit-remaining-{family}": "0",
    }
    return RateLimited(message, retry_after=float(seconds), headers=headers, code=spec.metric)


def slot_refusal(spec: SlotSpec, current: int) -> RateLimited:
    name = spec.entity.alias or spec.entity.id
    scope = f" for model {spec.model}" if spec.model else ""
    message = (
        f"Max parallel request limit reached for {spec.entity.kind} '{name}'{scope}: "
        f"max_parallel {spec.limit}, {current} in flight."
    )
    return RateLimited(message, retry_after=1.0, headers={"retry-after": "1"}, code="max_parallel")
