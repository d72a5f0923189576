"""The ``cache`` scenario (issue 16): one tollgate worker with the response cache on Redis
(127.0.0.1:6379, a run-unique ``TOLLGATE_REDIS_PREFIX``, keys deleted afterwards), measured in
three kinds of request on the same server and in the same run, JSON and SSE:

  cache-off   the request opts out (``"cache": {"use-cache": false}``): the plain path
  cache-miss  a new question every request (``wrk/cache_miss.lua``): key, lookup, upstream, store
  cache-hit   the same question every time: key, lookup, answered from Redis, no upstream

The kinds run interleaved for ``ROUNDS`` rounds, so load from elsewhere on the box falls on all of
them alike; the notes give, per kind, the median over the rounds of the p50 at concurrency 1 and
of the CPU per request at the highest concurrency, and the difference to cache-off.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from common import fmt
from measure import Cell, ServerResult

ROUNDS = 3
KINDS = ("off", "miss", "hit")
CACHE_MODES = tuple(
    f"cache-{kind}{suffix}" for _ in range(ROUNDS) for suffix in ("", "-sse") for kind in KINDS
)
# Only the cache uses Redis (counters and routing state stay in memory), so cache-off is the
# plain row's path and the differences are the cache's own.
CACHE_SETTINGS: dict[str, Any] = {
    "cache": True,
    "cache_params": {"type": "redis", "host": "127.0.0.1", "port": 6379, "ttl": 300},
}


Value = Callable[[Cell], float | None]


def _median(result: ServerResult, mode: str, conc: int, value: Value) -> float | None:
    found = [v for c in result.cells if c.mode == mode and c.conc == conc and (v := value(c)) is not None]
    return statistics.median(found) if found else None


def _line(result: ServerResult, suffix: str, conc: int, what: str, value: Value) -> str | None:
    base = _median(result, f"cache-off{suffix}", conc, value)
    parts = []
    for kind in KINDS:
        figure = _median(result, f"cache-{kind}{suffix}", conc, value)
        if figure is None:
            continue
        added = ""
        if kind != "off" and base is not None:
            added = f" ({'+' if figure >= base else ''}{fmt(figure - base, 3)})"
        parts.append(f"{kind} {fmt(figure, 3)}{added}")
    if not parts:
        return None
    return f"cache{' SSE' if suffix else ''}, {what} at c={conc} (median of {ROUNDS}): " + ", ".join(parts)


def cache_notes(result: ServerResult) -> list[str]:
    concs = sorted({c.conc for c in result.cells})
    if not concs:
        return []
    lines = []
    for suffix in ("", "-sse"):
        lines.append(_line(result, suffix, concs[0], "p50 ms", lambda c: c.p50_ms))
        lines.append(_line(result, suffix, concs[-1], "CPU ms/req", lambda c: c.cpu_ms_per_req))
    return [line for line in lines if line is not None]
