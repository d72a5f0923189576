"""Prometheus metrics: a ``Ledger`` sink for finished requests, and an ``Admission`` wrapper that
counts refusals (rate limit, budget) and in-flight requests.

Labels are bounded: each label keeps at most ``max_values`` distinct values; later ones are
reported as ``"other"``. The children of each label combination are cached, so a sink call is a
dictionary look-up and a few increments. With several workers, set ``PROMETHEUS_MULTIPROC_DIR``
before the workers start: prometheus_client then keeps values in per-process files and
``render`` merges them (gauges as ``livesum``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as mp

from tollgate.call import Admission, Attempted, Call, Route, Ticket
from tollgate.canonical import Usage
from tollgate.errors import BudgetExceeded, GatewayError, RateLimited

OTHER = "other"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, float("inf"))
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, float("inf"))
LABELS = ("model_group", "deployment", "team", "key_alias")
MAX_CACHED_SERIES = 10_000


class LabelCap:
    """At most ``limit`` distinct values; the rest become ``"other"``."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        value = value or ""
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(value)
        return value


class Metrics:
    def __init__(
        self,
        max_values: int = 100,
        registry: CollectorRegistry | None = None,
        *,
        multiprocess_dir: str | None = None,
    ) -> None:
        """``multiprocess_dir``: ``PROMETHEUS_MULTIPROC_DIR`` when several workers share metrics."""
        self._multiprocess_dir = multiprocess_dir
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self._caps = {name: LabelCap(max_values) for name in (*LABELS, "model", "code")}
        self.requests = Counter("tollgate_requests", "Finished requests", [*LABELS, "status"], registry=r)
        self.input_tokens = Counter("tollgate_input_tokens", "Prompt tokens, with cache", LABELS, registry=r)
        self.output_tokens = Counter("tollgate_output_tokens", "Completion tokens", LABELS, registry=r)
        self.spend = Counter("tollgate_spend_usd", "Spend in US dollars", LABELS, registry=r)
        self.latency = Histogram(
            "tollgate_request_latency_seconds", "Request latency", ["model_group", "deployment"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.ttft = Histogram(
            "tollgate_time_to_first_token_seconds", "Streaming time to first token",
            ["model_group", "deployment"], buckets=TTFT_BUCKETS, registry=r,
        )
        self.errors = Counter(
            "tollgate_upstream_errors", "Failed requests by error class",
            ["model_group", "deployment", "error_class"], registry=r,
        )
        self.retries = Counter("tollgate_retries", "Extra attempts", ["model_group"], registry=r)
        self.fallbacks = Counter(
            "tollgate_fallbacks", "Requests answered by another model group",
            ["requested_model", "model_group"], registry=r,
        )
        self.refusals = Counter(
            "tollgate_refusals", "Requests refused by policy", ["kind", "limit", "model"], registry=r
        )
        self.counted = Counter(
            "tollgate_counted_admissions",
            "Admitted requests by where their limits and budgets were counted: lease (a replica's "
            "quota lease, no Redis round trip), redis (one by one), memory (this process), open",
            ["counted_in"], registry=r,
        )
        self.in_flight = Gauge(
            "tollgate_in_flight_requests", "Admitted requests not finished", ["model"],
            registry=r, multiprocess_mode="livesum",
        )
        self.cache_hits = Counter(
            "tollgate_cache_hits", "Requests (embedding inputs) answered from the response cache",
            ["call_type", "model_group"], registry=r,
        )
        self.cache_misses = Counter(
            "tollgate_cache_misses", "Cache lookups that found no usable answer",
            ["call_type", "model_group"], registry=r,
        )
        self.cache_errors = Counter(
            "tollgate_cache_errors", "Response-cache store failures (the request is served without it)",
            ["operation"], registry=r,
        )
        self.queue_depth = Gauge(
            "tollgate_queue_depth", "Requests waiting for deployment capacity", ["model_group"],
            registry=r, multiprocess_mode="livesum",
        )
        # Guardrail names come from the config, so the label needs no cap.
        self.guardrail_checks = Counter(
            "tollgate_guardrail_checks", "Guardrail runs by outcome (passed, blocked, anonymized, failed)",
            ["guardrail", "mode", "outcome"], registry=r,
        )
        self._children: dict[tuple[str, ...], tuple[Any, ...]] = {}
        self._counted: dict[str, Any] = {}  # counted_in → its child (a handful of values)

    def _label(self, name: str, value: str | None) -> str:
        return self._caps[name](value)

    def _series(self, attempted: Attempted) -> tuple[Any, ...]:
        dep = attempted.deployment
        raw = (
            attempted.model_group or "",  # never a name a client made up (unknown model, bad key)
            dep.id if dep is not None else None,
            attempted.call.principal.team_id,
            attempted.call.principal.key_alias,
            str(attempted.status),
        )
        children = self._children.get(raw)  # type: ignore[arg-type]
        if children is None:
            if len(self._children) >= MAX_CACHED_SERIES:
                self._children.clear()  # the label caps bound the series; this bounds the cache
            labels = tuple(self._label(n, v) for n, v in zip(LABELS, raw, strict=False))
            pair = labels[:2]
            children = (
                self.requests.labels(*labels, raw[4]),
                self.input_tokens.labels(*labels),
                self.output_tokens.labels(*labels),
                self.spend.labels(*labels),
                self.latency.labels(*pair),
                self.ttft.labels(*pair),
                self.retries.labels(labels[0]),
            )
            self._children[raw] = children  # type: ignore[index]
        return children

    def admitted(self, ticket: Ticket) -> None:
        """One admitted request, by where its limits and budgets were counted (if anywhere)."""
        where = ticket.counted_in
        if where:
            child = self._counted.get(where)
            if child is None:
                child = self._counted[where] = self.counted.labels(where)
            child.inc()

    def guardrail(self, name: str, mode: str, outcome: str) -> None:
        """The guardrails' ``on_run`` callback: one run of one guardrail and what it decided."""
        self.guardrail_checks.labels(name, mode, outcome).inc()

    def queue(self, model_group: str, depth: int) -> None:
        """The router's ``on_queue_depth`` callback."""
        self.queue_depth.labels(self._label("model_group", model_group)).set(depth)

    def __call__(self, attempted: Attempted, cost: Decimal) -> None:
        requests, input_tokens, output_tokens, spend, latency, ttft, retries = self._series(attempted)
        requests.inc()
        usage = attempted.usage
        if usage is not None and not attempted.cache_hit:  # a hit sends no token upstream
            _usage(usage, input_tokens, output_tokens)
        if cost:
            spend.inc(float(cost))
        latency.observe(attempted.ended - attempted.started)
        if attempted.first_token_at is not None:
            ttft.observe(attempted.first_token_at - attempted.started)
        if attempted.attempts > 1:
            retries.inc(attempted.attempts - 1)
        if attempted.error is not None and attempted.attempts:  # refusals never reached an upstream
            dep = attempted.deployment
            self.errors.labels(
                self._label("model_group", attempted.model_group or ""),
                self._label("deployment", dep.id if dep is not None else None),
                type(attempted.error).__name__,
            ).inc()
        group = attempted.model_group
        if group is not None and group != attempted.call.model:
            asked = self._label("model", attempted.call.model)
            self.fallbacks.labels(asked, self._label("model_group", group)).inc()

    def cache_lookup(self, call_type: str, model_group: str, hit: bool, count: int = 1) -> None:
        """The response cache's ``CacheObserver``: hits and misses per call type and model group."""
        counter = self.cache_hits if hit else self.cache_misses
        counter.labels(call_type, self._label("model_group", model_group)).inc(count)

    def cache_error(self, operation: str) -> None:
        self.cache_errors.labels(operation).inc()

    def refused(self, call: Call, error: GatewayError) -> None:
        kind = "budget" if isinstance(error, BudgetExceeded) else "rate_limit"
        limit = self._label("code", error.code or kind)
        self.refusals.labels(kind, limit, self._label("model", call.model)).inc()

    def render(self) -> bytes:
        directory = self._multiprocess_dir
        if directory is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        mp.MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(merged)

    def process_exit(self) -> None:
        if self._multiprocess_dir is not None:
            mp.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _usage(usage: Usage, input_tokens: Any, output_tokens: Any) -> None:
    if usage.prompt_tokens:
        input_tokens.inc(usage.prompt_tokens)
    if usage.output_tokens:
        output_tokens.inc(usage.output_tokens)


class _CountedTicket:
    __slots__ = ("_gauge", "_inner", "_settled")

    def __init__(self, inner: Ticket, gauge: Any) -> None:
        self._inner = inner
        self._gauge = gauge
        self._settled = False

    @property
    def headers(self) -> Mapping[str, str]:
        return self._inner.headers

    @property
    def reachable(self) -> frozenset[str]:
        return self._inner.reachable

    @property
    def counted_in(self) -> str:
        return self._inner.counted_in

    async def settle(self, usage: Usage | None, cost: Decimal, group: str | None = None) -> None:
        if not self._settled:
            self._settled = True
            self._gauge.dec()
        await self._inner.settle(usage, cost, group)


class MeteredAdmission:
    """Wraps the policy: counts refusals by limit kind and admissions by where they were counted,
    and keeps the in-flight gauge."""

    def __init__(self, inner: Admission, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def admit(self, call: Call, route: Route) -> Ticket:
        try:
            ticket = await self._inner.admit(call, route)
        except (RateLimited, BudgetExceeded) as exc:
            self._metrics.refused(call, exc)
            raise
        metrics = self._metrics
        gauge = metrics.in_flight.labels(metrics._label("model", call.model))
        gauge.inc()
        metrics.admitted(ticket)
        return _CountedTicket(ticket, gauge)

    async def admit_cached(self, call: Call, route: Route | None = None) -> Ticket:
        try:
            ticket = await self._inner.admit_cached(call, route)
        except (RateLimited, BudgetExceeded) as exc:
            self._metrics.refused(call, exc)
            raise
        self._metrics.admitted(ticket)
        return ticket
