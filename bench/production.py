"""``run.py --scenarios production``: tollgate in the shape real deployments run (issue 17).

One server, ``tollgate serve --workers 2``, with
  * the spend log in a fresh PostgreSQL database (``tollgate migrate`` first, dropped after);
  * counters and routing state in Redis (127.0.0.1:6379) under their own ``TOLLGATE_REDIS_PREFIX``
    (its keys deleted after);
  * a virtual key that belongs to a user, a team and an organisation, each (and the key) with
    rpm / tpm / max-parallel limits and a daily and a monthly budget, all far out of reach, created
    through the admin API (``/organization/new``, ``/team/new``, ``/user/new``, ``/team/member_add``,
    ``/key/generate``); the deployment is priced, so every request settles real spend.

wrk at c=16 drives the master key and the production key in turn, JSON and SSE with
``stream_options.include_usage``, ``--production-rounds`` times (interleaved, so drift hits both
alike). Per cell: rps, latency, the gateway's CPU per request (its whole process tree, from
/proc, read after the cell's spend rows are in the database and the server is idle again, so the
batched writer's work is billed to the cell that caused it), and, for information, the CPU of the
PostgreSQL backends serving this database and of the Redis server (whole server) per request.

Afterwards the server gets SIGTERM (the spend log flushes) and the rows are counted against the
requests answered (probes + warm-ups + measured runs). Then ``redis_trips`` counts the Redis round
trips per request by phase on a second server of the same shape behind a counting proxy.
``production-nolog`` adds the same server with ``disable_spend_logs: true``: the CPU difference is
the spend log's cost. ``production-exact`` adds it with ``counter_leases: false``: every counted
request goes to Redis one by one (the cost the quota leases save).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import Any

import pg
from common import CHAT_BODY, CHAT_PATH, MASTER_KEY, fmt, log
from loadgen import run_wrk
from procstat import CLK_TCK, read_stat, settle, tree_cpu_seconds
from production_shape import SSE_BODY, migrate, production_config, production_key, write_config
from redis_trips import TripReport, count_round_trips
from scenarios import REDIS_HOST, REDIS_PORT, clear_redis
from servers import Server, free_port, http_status, tollgate_argv

WORKERS = 2
CONC = 16
MODES = ("json", "sse-usage")


@dataclass
class ProdCell:
    server: str
    who: str  # master | production
    mode: str
    round: int
    rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu_ms_per_req: float | None = None
    pg_cpu_ms_per_req: float | None = None
    redis_cpu_ms_per_req: float | None = None
    requests: int = 0
    errors: int = 0


@dataclass
class ServerRun:
    name: str
    spend_logs: bool
    leases: bool = True
    cells: list[ProdCell] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=lambda: {"master": 0, "production": 0})
    unseen_max: int = 0
    rows: int | None = None
    rows_production: int | None = None
    stop_s: float | None = None
    error: str | None = None


@dataclass
class ProductionResult:
    runs: list[ServerRun] = field(default_factory=list)
    trips: TripReport | None = None
    notes: list[str] = field(default_factory=list)


def pg_cpu_ticks(database: str, start: dict[int, int] | None = None) -> dict[int, int]:
    """CPU ticks of every backend serving ``database`` (a backend started since counts from 0)."""
    out: dict[int, int] = {}
    for pid in pg.backend_pids(database):
        st = read_stat(pid)
        if st is not None:
            out[pid] = st.cpu_ticks
    if start is not None:
        for pid in start:
            out.setdefault(pid, start[pid])  # exited: its work since ``start`` is lost, not negative
    return out


def redis_cpu_seconds() -> float | None:
    """used_cpu_sys + used_cpu_user of the whole Redis server (other users of it add noise)."""
    res = subprocess.run(
        ["redis-cli", "-h", REDIS_HOST, "-p", str(REDIS_PORT), "INFO", "cpu"],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    values = dict(line.split(":", 1) for line in res.stdout.splitlines() if ":" in line)
    try:
        return float(values["used_cpu_sys"]) + float(values["used_cpu_user"])
    except (KeyError, ValueError):
        return None


def wait_for_rows(database: str, at_least: int, deadline_s: float = 10.0) -> None:
    """Until the spend log has written ``at_least`` rows (its batches flush every second)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline and pg.spend_rows(database) < at_least:
        time.sleep(0.1)


def measure_cell(
    s: Any, run: ServerRun, server: Server, database: str, who: str, key: str, mode: str, rnd: int
) -> ProdCell:
    settle(server.pid)
    pg0, redis0, cpu0 = pg_cpu_ticks(database), redis_cpu_seconds(), tree_cpu_seconds(server.pid)
    parsed, raw = run_wrk(s.wrk, server.port, mode, CONC, s.seconds, key)
    requests = int(parsed.get("requests", 0))
    run.sent[who] += requests
    run.unseen_max += CONC
    if run.spend_logs:
        wait_for_rows(database, sum(run.sent.values()))
    settle(server.pid, limit=3.0)
    cpu1, redis1 = tree_cpu_seconds(server.pid), redis_cpu_seconds()
    pg1 = pg_cpu_ticks(database, pg0)
    pg_s = sum(t - pg0.get(pid, 0) for pid, t in pg1.items()) / CLK_TCK
    cell = ProdCell(
        server=run.name,
        who=who,
        mode=mode,
        round=rnd,
        rps=parsed.get("rps", 0.0),
        p50_ms=parsed.get("p50_ms"),
        p99_ms=parsed.get("p99_ms"),
        requests=requests,
        errors=int(parsed.get("errors", 0)),
    )
    if requests:
        cell.cpu_ms_per_req = (cpu1 - cpu0) * 1000 / requests
        cell.pg_cpu_ms_per_req = pg_s * 1000 / requests
        if redis0 is not None and redis1 is not None:
            cell.redis_cpu_ms_per_req = (redis1 - redis0) * 1000 / requests
    else:
        log(f"{run.name} {who} {mode}: no requests completed:\n{raw}")
    log(
        f"{run.name} r{rnd} {who:10} {mode:9} rps={cell.rps:8.1f} p50={fmt(cell.p50_ms)}ms "
        f"cpu/req={fmt(cell.cpu_ms_per_req, 3)}ms pg={fmt(cell.pg_cpu_ms_per_req, 3)}ms "
        f"redis={fmt(cell.redis_cpu_ms_per_req, 3)}ms errors={cell.errors}"
    )
    return cell


def terminate(server: Server, timeout: float = 60.0) -> float:
    """SIGTERM the group and wait for a clean exit: the spend log flushes on shutdown."""
    t0 = time.perf_counter()
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.proc.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    return time.perf_counter() - t0


def time_server(
    s: Any, run: ServerRun, cmd: list[str], env: dict[str, str], upstream_port: int, tmp: Path, rounds: int
) -> None:
    database, url = pg.create_database()
    prefix = f"bench-{os.urandom(4).hex()}"
    run_env = {
        **env,
        "TOLLGATE_REDIS_PREFIX": prefix,
        "TOLLGATE_SPEND_SPILL_DIR": str(tmp / f"spill-{prefix}"),
    }
    server: Server | None = None
    try:
        config = write_config(
            tmp, run.name, production_config(upstream_port, url, REDIS_PORT, run.spend_logs, run.leases)
        )
        migrate(cmd, config, run_env)
        port = free_port()
        server = Server(
            run.name, tollgate_argv(cmd, config, port, WORKERS), port, tmp / f"{run.name}.log", run_env
        )
        server.wait_ready(s.ready_timeout)
        settle(server.pid, limit=s.ready_timeout)
        keys = {"master": MASTER_KEY, "production": production_key(port)}
        for who, key in keys.items():
            for body in (CHAT_BODY, SSE_BODY):
                status = http_status(
                    port, "POST", CHAT_PATH, timeout=30, body=json.dumps(body).encode(), key=key
                )
                run.sent[who] += 1
                if status != 200:
                    raise RuntimeError(f"{run.name}: {who} probe answered {status}:\n{server.log_tail()}")
        for mode in MODES:
            for who, key in keys.items():
                warm, _ = run_wrk(s.wrk, port, mode, CONC, s.warmup, key)
                run.sent[who] += int(warm.get("requests", 0))
                run.unseen_max += CONC
        for rnd in range(1, rounds + 1):
            for mode in MODES:
                for who, key in keys.items():
                    run.cells.append(measure_cell(s, run, server, database, who, key, mode, rnd))
        run.stop_s = terminate(server)
        server.stop()
        if run.spend_logs:
            by_key = pg.spend_by_key(database)
            run.rows = sum(by_key.values())
            run.rows_production = by_key.get(sha256(keys["production"].encode()).hexdigest(), 0)
    except (RuntimeError, subprocess.SubprocessError, OSError, KeyError) as exc:
        run.error = f"{exc}\n{server.log_tail() if server else ''}".strip()
        log(f"{run.name}: FAILED: {run.error}")
    finally:
        if server is not None:
            server.stop()
        pg.drop_database(database)
        clear_redis(prefix)


def run_production(
    s: Any, names: list[str], cmd: list[str], env: dict[str, str], upstream_port: int, tmp: Path, rounds: int
) -> ProductionResult:
    result = ProductionResult()
    plan = [ServerRun("production", True)]
    if "production-nolog" in names:
        plan.append(ServerRun("production-nolog", False))
    if "production-exact" in names:
        plan.append(ServerRun("production-exact", True, leases=False))
    for run in plan:
        result.runs.append(run)
        time_server(s, run, cmd, env, upstream_port, tmp, rounds)
    try:
        result.trips = count_round_trips(cmd, env, upstream_port, tmp, s.ready_timeout)
    except (RuntimeError, subprocess.SubprocessError, OSError, KeyError) as exc:
        result.notes.append(f"Redis round-trip count failed: {exc}")
        log(f"redis round trips: FAILED: {exc}")
    return result
