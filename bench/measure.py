"""One server measured: cold start, warm-up, idle RSS, the wrk cells (with CPU per request from
``/proc``) and streaming TTFB; the result dataclasses the report renders."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common import CHAT_BODY, CHAT_PATH, MASTER_KEY, fmt, log
from loadgen import measure_ttfb, run_wrk
from procstat import settle, tree_cpu_seconds, tree_rss_mb
from servers import Server, http_status


@dataclass
class Cell:
    server: str
    mode: str
    conc: int
    rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_ms_per_req: float | None = None
    requests: int = 0
    errors: int = 0


@dataclass
class ServerResult:
    name: str
    kind: str  # upstream | tollgate | litellm
    workers: int
    cold_start_s: float | None = None  # process start -> first 200 on the liveliness probe
    settled_s: float | None = None  # process start -> the whole process tree is idle after that
    rss_ready_mb: float | None = None
    rss_idle_mb: float | None = None  # after warm-up, idle
    processes: int = 0
    ttfb: dict[str, float] = field(default_factory=dict)
    cells: list[Cell] = field(default_factory=list)
    error: str | None = None
    sent: int = 0  # requests answered in all: probe, warm-up and measured wrk runs, TTFB samples
    # wrk counts only answers read before its deadline: up to one request per connection per run
    # may still be answered (and logged) after it.
    unseen_max: int = 0


@dataclass
class Settings:
    wrk: str
    seconds: float
    warmup: float
    concurrency: list[int]
    modes: list[str]
    ttfb_samples: int
    ready_timeout: float


Setup = Callable[[Server], str]  # runs once the server is ready; returns the key to send


def bench_server(s: Settings, server: Server, result: ServerResult, setup: Setup | None = None) -> None:
    """Cold start, warm-up, idle RSS, the wrk cells and TTFB for one running server."""
    result.cold_start_s = server.wait_ready(s.ready_timeout)
    # With several workers the first 200 may come while the others still import: wait for quiet.
    settle(server.pid, limit=s.ready_timeout)
    result.settled_s = time.perf_counter() - server.started
    log(f"{result.name}: first 200 after {result.cold_start_s:.2f}s, idle after {result.settled_s:.2f}s")
    result.rss_ready_mb, _ = tree_rss_mb(server.pid)
    key = setup(server) if setup is not None else MASTER_KEY
    probe = json.dumps(CHAT_BODY).encode()
    status = http_status(server.port, "POST", CHAT_PATH, timeout=30, body=probe, key=key)
    result.sent += 1
    if status != 200:
        raise RuntimeError(f"{result.name}: probe chat completion answered {status}:\n{server.log_tail()}")
    for mode in s.modes:
        warm, _ = run_wrk(s.wrk, server.port, mode, 16, s.warmup, key)
        result.sent += int(warm.get("requests", 0))
        result.unseen_max += 16
    time.sleep(0.5)
    result.rss_idle_mb, result.processes = tree_rss_mb(server.pid)
    for mode in s.modes:
        for conc in s.concurrency:
            settle(server.pid)
            cpu0 = tree_cpu_seconds(server.pid)
            parsed, raw = run_wrk(s.wrk, server.port, mode, conc, s.seconds, key)
            cpu1 = tree_cpu_seconds(server.pid)
            requests = int(parsed.get("requests", 0))
            result.sent += requests
            result.unseen_max += conc
            cell = Cell(
                server=result.name,
                mode=mode,
                conc=conc,
                rps=parsed.get("rps", 0.0),
                p50_ms=parsed.get("p50_ms"),
                p99_ms=parsed.get("p99_ms"),
                cpu_ms_per_req=(cpu1 - cpu0) * 1000 / requests if requests else None,
                requests=requests,
                errors=int(parsed.get("errors", 0)),
            )
            if not requests:
                log(f"{result.name} {mode} c={conc}: no requests completed:\n{raw}")
            result.cells.append(cell)
            log(
                f"{result.name:16} {mode:4} c={conc:<3} rps={cell.rps:9.1f} p50={fmt(cell.p50_ms)}ms "
                f"p99={fmt(cell.p99_ms)}ms cpu/req={fmt(cell.cpu_ms_per_req, 3)}ms errors={cell.errors}"
            )
    if "sse" in s.modes:
        result.ttfb = measure_ttfb(server.port, s.ttfb_samples, key)
        result.sent += s.ttfb_samples
        log(f"{result.name}: streaming TTFB p50 {result.ttfb['ttfb_p50_ms']:.2f}ms")


def run_one(
    s: Settings,
    result: ServerResult,
    argv: Sequence[str],
    port: int,
    env: dict[str, str],
    logs: Path,
    setup: Setup | None = None,
) -> None:
    server = Server(result.name, argv, port, logs / f"{result.name.replace(' ', '-')}.log", env)
    try:
        bench_server(s, server, result, setup)
    except Exception as exc:  # one broken server must not cost the rest of the table
        result.error = str(exc).strip()
        log(f"{result.name}: FAILED: {result.error}")
    finally:
        server.stop()
