"""The gateway's ``Accounting``: what a finished request cost, and where that is recorded.

``cost`` prices usage with the ``Pricer``; ``record`` hands the finished request to every sink
(the per-request JSON metric line, the spend log writer, Prometheus metrics). Sinks never block:
anything that does I/O batches off the request path.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Protocol, TextIO

import orjson

from tollgate.accounting.pricing import Pricer
from tollgate.call import Attempted
from tollgate.canonical import Usage
from tollgate.config import Deployment


class Sink(Protocol):
    def __call__(self, attempted: Attempted, cost: Decimal) -> None: ...


class Ledger:
    def __init__(self, pricer: Pricer, sinks: Sequence[Sink] = ()) -> None:
        self._pricer = pricer
        self._sinks = tuple(sinks)

    def cost(self, deployment: Deployment, usage: Usage) -> Decimal:
        return self._pricer.cost(usage, deployment)

    def record(self, attempted: Attempted, cost: Decimal) -> None:
        for sink in self._sinks:
            sink(attempted, cost)


class MetricLines:
    """One JSON line per request on stdout, in exactly the fields LiteLLM's metrics callback
    prints, so existing CloudWatch metric filters keep working (docs/observability.md)."""

    def __init__(self, out: TextIO | None = None, clock: Callable[[], float] = time.time) -> None:
        self._out = out or sys.stdout
        self._clock = clock

    def __call__(self, attempted: Attempted, cost: Decimal) -> None:
        usage = attempted.usage or Usage()
        dep = attempted.deployment
        line: dict[str, object] = {
            "litellm_metric": True,
            # A model group of the config, or "": a made-up name must not become a dimension.
            "model": attempted.model_group or "",
            "provider_model": dep.litellm_model if dep is not None else None,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "response_cost": float(cost),
            "response_time_ms": round((attempted.ended - attempted.started) * 1000, 3),
            "status_code": attempted.status,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(attempted.ended)),
        }
        if attempted.cache_hit:
            line["cache_hit"] = True
        if attempted.error is not None:
            line["error"] = f"{type(attempted.error).__name__}: {attempted.error.message}"[:500]
        self._out.write(orjson.dumps(line).decode() + "\n")
        self._out.flush()
