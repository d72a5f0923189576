"""The ``cache`` scenario (issue 16): one tollgate worker with the response cache on Redis
(127.0.0.1:6379, a run-unique ``TOLLGATE_REDIS_PREFIX``, keys deleted afterwards), measured in
three kinds of request on the same server and in the same run, JSON and SSE:

  cache-off   the request opts out (``"cache": {"use-cache": false}``): the plain path
  cache-miss  a new question every request (``wrk/cache_miss.lua``): key, lookup, upstream, store
  cache-hit   the same question every time: key, lookup, answered from Redis, no upstream

The kinds run interleaved for ``ROUNDS`` rounds, so load from elsewhere on the box falls on all of
them alike; the notes give, per kind, the median over the rounds of the p50 at concurrency 1 and
of the CPU per request at the highest concurrency, and the difference to cache-off. Before the wrk
cells, ``LatencyProbe`` sends the three kinds one after the other on one keep-alive connection,
``PROBE_SAMPLES`` times each: the median of the per-triple differences is the added latency least
disturbed by other work on the box.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from common import CHAT_BODY, CHAT_PATH, MASTER_KEY, fmt
from measure import Cell, ServerResult
from servers import Server

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


PROBE_SAMPLES = 300


class LatencyProbe:
    """The scenario's setup: paired latencies of cache-off, miss and hit, then the master key."""

    def __init__(self, samples: int = PROBE_SAMPLES) -> None:
        self.samples = samples
        self.lines: list[str] = []

    def __call__(self, server: Server) -> str:
        for stream in (False, True):
            self.lines.append(self._measure(server.port, stream))
        return MASTER_KEY

    def _measure(self, port: int, stream: bool) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
        salt = os.urandom(6).hex()
        hit_text = f"hello probe {salt}"
        times: dict[str, list[float]] = {kind: [] for kind in KINDS}
        try:
            for i in range(self.samples + 1):  # the first triple stores the hit's answer: not counted
                for kind in KINDS:
                    body: dict[str, Any] = {**CHAT_BODY, "stream": stream}
                    if kind == "off":
                        body["cache"] = {"use-cache": False}
                    text = f"hello {salt} {i}" if kind == "miss" else hit_text
                    body["messages"] = [{"role": "user", "content": text}]
                    started = time.perf_counter()
                    conn.request("POST", CHAT_PATH, body=json.dumps(body).encode(), headers=headers)
                    response = conn.getresponse()
                    response.read()
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status != 200:
                        raise RuntimeError(f"cache probe: {kind} answered {response.status}")
                    if i:
                        times[kind].append(elapsed)
        finally:
            conn.close()
        off = times["off"]
        parts = [f"off {fmt(statistics.median(off), 3)}"]
        for kind in ("miss", "hit"):
            added = statistics.median(t - o for t, o in zip(times[kind], off, strict=True))
            sign = "+" if added >= 0 else ""
            parts.append(f"{kind} {fmt(statistics.median(times[kind]), 3)} ({sign}{fmt(added, 3)})")
        what = "SSE (whole stream)" if stream else "JSON"
        head = f"cache {what}, paired probe, ms per request at c=1 (median of {self.samples})"
        return f"{head}: " + ", ".join(parts)


def cache_notes(result: ServerResult, probe: LatencyProbe | None = None) -> list[str]:
    concs = sorted({c.conc for c in result.cells})
    if not concs:
        return []
    lines: list[str | None] = [*(probe.lines if probe is not None else [])]
    for suffix in ("", "-sse"):
        lines.append(_line(result, suffix, concs[0], "p50 ms", lambda c: c.p50_ms))
        lines.append(_line(result, suffix, concs[-1], "CPU ms/req", lambda c: c.cpu_ms_per_req))
    return [line for line in lines if line is not None]
