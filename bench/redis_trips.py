"""Redis round trips per request in the production shape, by phase (issue 17: "admission and
settlement for the whole chain: at most one Redis round trip each").

A server of the production shape (2 workers, PostgreSQL, Redis, the limited key chain) talks to
Redis through ``redis_probe.RedisProbe``. After a warm-up (principals cached in both workers, Lua
scripts loaded), it gets exact numbers of requests from a few client threads, window by window:
the production key in JSON and in SSE with include_usage, the master key in JSON, then one admin
write (``/key/update``) for the invalidation traffic, and an idle window for what runs anyway.
Each window's round trips by phase are divided by its requests.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pg
from common import CHAT_BODY, CHAT_PATH, MASTER_KEY, log
from procstat import settle
from production_shape import SSE_BODY, migrate, production_config, production_key, write_config
from redis_probe import RedisProbe, Tally
from scenarios import admin, clear_redis
from servers import Server, free_port, tollgate_argv

CLIENTS = 8
IDLE_SECONDS = 2.0


@dataclass
class Window:
    name: str
    requests: int  # answered 200 (for the idle window: seconds)
    tally: Tally


@dataclass
class TripReport:
    windows: list[Window] = field(default_factory=list)
    failures: int = 0
    answered: int = 0  # every request of this server that was answered 200 (all exact counts)
    rows: int | None = None  # spend rows after SIGTERM


def _client(port: int, key: str, body: bytes, count: int, statuses: list[int]) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for _ in range(count):
            try:
                conn.request("POST", CHAT_PATH, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                statuses.append(resp.status)
            except (OSError, http.client.HTTPException):
                statuses.append(0)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    finally:
        conn.close()


def drive(port: int, key: str, body: dict[str, object], total: int, clients: int = CLIENTS) -> int:
    """Send exactly ``total`` requests from ``clients`` keep-alive threads; return the 200s."""
    statuses: list[int] = []  # list.append is atomic under the GIL
    raw = json.dumps(body).encode()
    shares = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    threads = [threading.Thread(target=_client, args=(port, key, raw, n, statuses)) for n in shares]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses.count(200)


def count_round_trips(
    cmd: list[str],
    env: dict[str, str],
    upstream_port: int,
    tmp: Path,
    ready_timeout: float,
    requests: int = 1000,
) -> TripReport:
    report = TripReport()
    prefix = f"bench-{os.urandom(4).hex()}"
    probe = RedisProbe(prefix)
    database, url = pg.create_database()
    server: Server | None = None
    run_env = {
        **env,
        "TOLLGATE_REDIS_PREFIX": prefix,
        "TOLLGATE_SPEND_SPILL_DIR": str(tmp / f"spill-{prefix}"),
    }
    try:
        probe_port = probe.start()
        config = write_config(tmp, "redis-trips", production_config(upstream_port, url, probe_port, True))
        migrate(cmd, config, run_env)
        port = free_port()
        server = Server(
            "tollgate redis-trips",
            tollgate_argv(cmd, config, port, 2),
            port,
            tmp / "redis-trips.log",
            run_env,
        )
        server.wait_ready(ready_timeout)
        settle(server.pid, limit=ready_timeout)
        key = production_key(port, "trips")
        # Warm-up: both workers cache the principal and load the Lua scripts.
        for who, body in ((key, CHAT_BODY), (key, SSE_BODY), (MASTER_KEY, CHAT_BODY)):
            report.answered += drive(port, who, body, 64)
        settle(server.pid)

        def window(name: str, who: str, body: dict[str, object], total: int) -> None:
            before = probe.snapshot()
            ok = drive(port, who, body, total)
            settle(server.pid)  # settlements and usage writes finish after the last byte
            report.windows.append(Window(name, ok, probe.snapshot() - before))
            report.failures += total - ok
            report.answered += ok
            log(f"redis round trips: {name}: {ok} requests answered")

        window("production key, JSON", key, CHAT_BODY, requests)
        window("production key, SSE include_usage", key, SSE_BODY, requests // 2)
        window("master key, JSON", MASTER_KEY, CHAT_BODY, requests // 5)
        before = probe.snapshot()
        admin(port, "/key/update", {"key": key, "metadata": {"touched": True}})
        time.sleep(0.5)  # the subscribers' receipt is not a round trip; give the publish time to land
        report.windows.append(Window("one admin write (/key/update)", 1, probe.snapshot() - before))
        before = probe.snapshot()
        time.sleep(IDLE_SECONDS)
        report.windows.append(
            Window(f"idle, per second ({IDLE_SECONDS:.0f} s)", int(IDLE_SECONDS), probe.snapshot() - before)
        )
        os.killpg(server.pid, signal.SIGTERM)  # the spend log flushes on a clean stop
        server.proc.wait(timeout=60)
        report.rows = pg.spend_rows(database)
    finally:
        if server is not None:
            server.stop()
        probe.stop()
        pg.drop_database(database)
        clear_redis(prefix)
    return report


def trip_lines(report: TripReport) -> list[str]:
    """Markdown: round trips (and commands) per request, by phase, per window."""
    out = [
        "",
        "### Redis round trips per request (production shape, through a counting proxy)",
        "",
        "| window | requests | phase | round trips / req | commands / req |",
        "|---|---:|---|---:|---:|",
    ]
    for w in report.windows:
        phases = sorted(w.tally.round_trips, key=lambda p: -w.tally.round_trips[p])
        if not phases:
            out.append(f"| {w.name} | {w.requests} | (none) | 0 | 0 |")
        total_rt = sum(w.tally.round_trips.values())
        total_cmd = sum(w.tally.commands.values())
        for phase in phases:
            rt = w.tally.round_trips[phase] / max(w.requests, 1)
            cmds = w.tally.commands[phase] / max(w.requests, 1)
            out.append(f"| {w.name} | {w.requests} | {phase} | {rt:.3f} | {cmds:.3f} |")
        if len(phases) > 1:
            out.append(
                f"| {w.name} | {w.requests} | **all** | {total_rt / max(w.requests, 1):.3f} | "
                f"{total_cmd / max(w.requests, 1):.3f} |"
            )
    names = ", ".join(
        f"{w.name}: "
        + " ".join(f"{n}×{c / max(w.requests, 1):.2f}" for n, c in sorted(w.tally.names.items()))
        for w in report.windows
        if w.tally.names
    )
    if names:
        out += ["", f"Commands per request by name — {names}."]
    if report.rows is not None:
        verdict = (
            "equal" if report.rows == report.answered else f"**MISMATCH by {report.rows - report.answered}**"
        )
        out += [
            "",
            f"Exact spend-row check on this server (every request counted by its client): {report.rows} rows "
            f"for {report.answered} requests answered 200 — {verdict}.",
        ]
    if report.failures:
        out += ["", f"**{report.failures} requests were not answered 200 during the count.**"]
    return out
