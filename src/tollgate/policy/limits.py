"""Rate limits and the ``CounterTicket``: what one admitted request reserved, and how it settles.

Per entity (and per model, from ``Entity.model_limits[model]``) a request is counted in up to
four sliding one-minute windows, ``rpm`` (1 per request), ``tpm`` (input estimate + output
reservation), ``input_tpm`` and ``output_tpm``, and takes one ``max_parallel`` slot. Only
configured limits are counted. Settlement corrects the token windows in the bucket where the
reservation went by (actual - reserved), releases the slot and the budget reservation, and adds
the real cost to every budget window's spend. ``settle`` is idempotent and never raises a store
error, so it belongs in a ``finally``; ``usage=None`` (failed before any token) counts 0 tokens,
while the request itself stays counted in ``rpm``.
May import: ``auth.principal``, ``canonical``, ``store.counters``, ``errors``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Literal

from tollgate.auth.principal import Entity, Limits
from tollgate.canonical import Usage
from tollgate.errors import RateLimited
from tollgate.store.counters import (
    CounterStore,
    CounterStoreUnavailable,
    Reservation,
    Settlement,
    SpendAdd,
    WindowAdjust,
    to_nano,
)

Metric = Literal["rpm", "tpm", "input_tpm", "output_tpm"]
_METRIC_KEYS: dict[Metric, str] = {"rpm": "req", "tpm": "tok", "input_tpm": "in", "output_tpm": "out"}


@dataclass(frozen=True, slots=True)
class WindowSpec:
    entity: Entity
    metric: Metric
    model: str | None  # set for a per-model limit
    key: str
    limit: int
    amount: int


@dataclass(frozen=True, slots=True)
class SlotSpec:
    entity: Entity
    model: str | None
    key: str
    limit: int


@dataclass(frozen=True, slots=True)
class SoftBudgetCrossed:
    """An entity's spend passed its soft budget in the window starting at ``window_start``."""

    entity_kind: str
    entity_id: str
    soft_budget: Decimal
    spend: Decimal
    window_start: float


@dataclass(frozen=True, slots=True)
class SpendTarget:
    """Where settlement adds the real cost; ``soft`` set on the one that tracks the soft budget."""

    entity: Entity
    key: str
    ttl: int | None
    window_start: float
    soft: Decimal | None = None


def entity_key(entity: Entity) -> str:
    return f"{entity.kind}:{entity.id}"


def window_specs(entity: Entity, model: str, input_tokens: int, output_tokens: int) -> list[WindowSpec]:
    specs = _windows_of(entity, entity.limits, None, input_tokens, output_tokens)
    per_model = entity.model_limits.get(model) if entity.model_limits else None
    if per_model is not None:
        specs += _windows_of(entity, per_model, model, input_tokens, output_tokens)
    return specs


def _windows_of(
    entity: Entity, limits: Limits, model: str | None, input_tokens: int, output_tokens: int
) -> list[WindowSpec]:
    suffix = f":m:{model}" if model is not None else ""
    base = f"w:{entity_key(entity)}:"
    amounts: dict[Metric, tuple[int | None, int]] = {
        "rpm": (limits.rpm, 1),
        "tpm": (limits.tpm, input_tokens + output_tokens),
        "input_tpm": (limits.input_tpm, input_tokens),
        "output_tpm": (limits.output_tpm, output_tokens),
    }
    return [
        WindowSpec(entity, metric, model, base + _METRIC_KEYS[metric] + suffix, limit, amount)
        for metric, (limit, amount) in amounts.items()
        if limit is not None
    ]


def slot_specs(entity: Entity, model: str) -> list[SlotSpec]:
    specs: list[SlotSpec] = []
    if entity.limits.max_parallel is not None:
        specs.append(SlotSpec(entity, None, f"p:{entity_key(entity)}", entity.limits.max_parallel))
    per_model = entity.model_limits.get(model) if entity.model_limits else None
    if per_model is not None and per_model.max_parallel is not None:
        specs.append(SlotSpec(entity, model, f"p:{entity_key(entity)}:m:{model}", per_model.max_parallel))
    return specs


def rate_headers(specs: list[WindowSpec], used: tuple[int, ...]) -> dict[str, str]:
    """OpenAI-style ``x-ratelimit-*`` headers for the tightest request and token limits."""
    headers: dict[str, str] = {}
    tightest: dict[str, tuple[int, int]] = {}
    for spec, before in zip(specs, used, strict=False):
        family = "requests" if spec.metric == "rpm" else "tokens"
        remaining = max(0, spec.limit - before - spec.amount)
        if family not in tightest or remaining < tightest[family][1]:
            tightest[family] = (spec.limit, remaining)
    for family, (limit, remaining) in tightest.items():
        headers[f"x-ratelimit-limit-{family}"] = str(limit)
        headers[f"x-ratelimit-remaining-{family}"] = str(remaining)
    return headers


def window_refusal(spec: WindowSpec, current: int, retry_after: float) -> RateLimited:
    name = spec.entity.alias or spec.entity.id
    scope = f" for model {spec.model}" if spec.model else ""
    seconds = max(1, math.ceil(retry_after))
    if spec.amount > spec.limit:
        detail = f"this request needs {spec.amount}, more than the limit of {spec.limit}"
    else:
        detail = f"Current limit: {spec.limit}, Remaining: {max(0, spec.limit - current)}"
    message = (
        f"Rate limit exceeded for {spec.entity.kind} '{name}'. Limit type: {spec.metric}{scope}. "
        f"{detail}. Retry after {seconds} seconds."
    )
    family = "requests" if spec.metric == "rpm" else "tokens"
    headers = {
        "retry-after": str(seconds),
        f"x-ratelimit-limit-{family}": str(spec.limit),
        f"x-ratelimit-remaining-{family}": str(max(0, spec.limit - current)),
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


class CounterTicket:
    """One admitted request's reservations. Use ``settle(usage, cost)`` or ``async with``."""

    __slots__ = (
        "_bucket",
        "_clock",
        "_member",
        "_on_soft_budget",
        "_releases",
        "_settled",
        "_slots",
        "_spends",
        "_store",
        "_via",
        "_warn",
        "_window_seconds",
        "_windows",
        "estimated_cost",
        "headers",
        "input_estimate",
        "output_reserve",
    )

    def __init__(
        self,
        *,
        store: CounterStore | None = None,
        clock: Callable[[], float] | None = None,
        member: str = "",
        bucket: int = 0,
        windows: tuple[WindowSpec, ...] = (),
        slots: tuple[str, ...] = (),
        releases: tuple[Reservation, ...] = (),
        spends: Callable[[float], list[SpendTarget]] | None = None,
        via: str = "memory",
        window_seconds: int = 60,
        headers: dict[str, str] | None = None,
        input_estimate: int = 0,
        output_reserve: int = 0,
        estimated_cost: Decimal = Decimal(0),
        on_soft_budget: Callable[[SoftBudgetCrossed], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._member = member
        self._bucket = bucket
        self._windows = windows
        self._slots = slots
        self._releases = releases
        self._spends = spends
        self._via = via
        self._window_seconds = window_seconds
        self._on_soft_budget = on_soft_budget
        self._warn = warn
        self._settled = store is None
        self.headers = headers or {}
        self.input_estimate = input_estimate
        self.output_reserve = output_reserve
        self.estimated_cost = estimated_cost

    @property
    def settled(self) -> bool:
        return self._settled

    async def __aenter__(self) -> CounterTicket:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.settle(None)

    async def settle(self, usage: Usage | None, cost: Decimal = Decimal(0)) -> None:
        """Correct token windows, release slot and reservation, add ``cost`` to spend. Once."""
        if self._settled or self._store is None or self._clock is None:
            return
        self._settled = True
        now = self._clock()
        cost_nano = to_nano(cost) if cost > 0 else 0
        targets = self._spends(now) if self._spends is not None and cost_nano else []
        settlement = Settlement(
            now,
            self._member,
            windows=self._adjustments(usage),
            slots=self._slots,
            releases=self._releases,
            spends=tuple(SpendAdd(t.key, cost_nano, t.ttl) for t in targets),
            window_seconds=self._window_seconds,
            via=self._via,
        )
        try:
            if self._via == "memory":
                # In-process counters settle without yielding, so a cancellation cannot cut in.
                totals = await self._store.settle(settlement)
            else:
                # Shielded: a client disconnect cancelling the request must not cut the write short.
                totals = await asyncio.shield(self._store.settle(settlement))
        except CounterStoreUnavailable as exc:
            if self._warn is not None:
                self._warn(f"could not settle request counters: {exc}")
            return
        self._soft_budget_events(targets, totals, cost_nano)

    def _adjustments(self, usage: Usage | None) -> tuple[WindowAdjust, ...]:
        actual_in = usage.prompt_tokens if usage is not None else 0
        actual_out = usage.output_tokens if usage is not None else 0
        actual = {"tpm": actual_in + actual_out, "input_tpm": actual_in, "output_tpm": actual_out}
        adjustments: list[WindowAdjust] = []
        for spec in self._windows:
            if spec.metric == "rpm":
                continue
            delta = actual[spec.metric] - spec.amount
            if delta:
                adjustments.append(WindowAdjust(spec.key, self._bucket, delta))
        return tuple(adjustments)

    def _soft_budget_events(self, targets: list[SpendTarget], totals: tuple[int, ...], added: int) -> None:
        if self._on_soft_budget is None:
            return
        for target, total in zip(targets, totals, strict=False):
            if target.soft is None:
                continue
            threshold = to_nano(target.soft)
            # Additions are atomic, so exactly one settlement sees the total step over the line.
            if total - added < threshold <= total:
                self._on_soft_budget(
                    SoftBudgetCrossed(
                        target.entity.kind, target.entity.id, target.soft,
                        Decimal(total).scaleb(-9), target.window_start,
                    )
                )
