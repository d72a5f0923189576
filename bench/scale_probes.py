"""What ``spend_scale.py`` measures once the database is loaded: the spend and usage queries over
HTTP, the first request of a cold key (time and SQL) and RSS per cached principal.

Query parameters are LiteLLM's (proxy 1.x ``spend_management_endpoints`` and the daily-activity
routes): ``/spend/logs`` api_key, user_id, request_id, start_date, end_date (tollgate adds team_id,
page, page_size); ``/spend/logs/v2`` adds model, page, page_size; ``/global/spend/report``
start_date, end_date, group_by ∈ team | customer | api_key; ``/user/daily/activity`` start_date,
end_date, model, api_key (the hashed token), user_id, page, page_size; ``/team/daily/activity``
team_ids; ``/tag/daily/activity`` tags. A route tollgate does not serve shows its status (404).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import re
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import pg
from common import CHAT_BODY, CHAT_PATH, MASTER_KEY, log
from procstat import settle, tree_rss_mb
from servers import Server, base_env, free_port, tollgate_env, upstream_argv

if TYPE_CHECKING:
    from spend_scale import Shape

PG_LOG = Path("/var/log/postgresql/postgresql-15-main.log")
TARGET_MS = 200.0
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \w+ \[\d+\] \S*@(\S+) (\w+):\s+(.*)$")
_CONTROL = re.compile(r"^(BEGIN|COMMIT|ROLLBACK)\b", re.I)
_DURATION = re.compile(r"^duration: ([\d.]+) ms\s+(?:(parse|bind|execute) [^:]*|statement): (.*)$", re.S)


def queries(shape: Shape, today: date) -> list[tuple[str, str, dict[str, object]]]:
    from spend_scale import key_plaintext, token

    d = {n: (today - timedelta(days=n)).isoformat() for n in (1, 7, 30, 90)}
    t = today.isoformat()
    key0, tok0 = key_plaintext(0), token(0)
    user0, team0, org0 = shape.user_id(0), shape.team_id(0), shape.org_id(0)
    return [
        ("/spend/logs", "key, 30 days, page 1 (100)", {"api_key": key0, "start_date": d[30], "end_date": t}),
        ("/spend/logs", "user, all time, page 1 (100)", {"user_id": user0}),
        ("/spend/logs", "user, all time, page 200 (100)", {"user_id": user0, "page": 200}),
        ("/spend/logs", "team, 7 days, page 1 (100)", {"team_id": team0, "start_date": d[7], "end_date": t}),
        ("/spend/logs", "everyone, yesterday, page 1 (100)", {"start_date": d[1], "end_date": d[1]}),
        ("/spend/logs", "no filter, page 1 (100)", {}),
        (
            "/spend/logs/v2",
            "model, 30 days, page 1 (50) [LiteLLM v2]",
            {
                "model": "model-1",
                "start_date": f"{d[30]} 00:00:00",
                "end_date": f"{t} 23:59:59",
                "page": 1,
                "page_size": 50,
            },
        ),
        (
            "/global/spend/report",
            "group_by=team, 30 days",
            {"group_by": "team", "start_date": d[30], "end_date": t},
        ),
        (
            "/global/spend/report",
            "group_by=api_key, 30 days",
            {"group_by": "api_key", "start_date": d[30], "end_date": t},
        ),
        (
            "/global/spend/report",
            "group_by=customer, 30 days",
            {"group_by": "customer", "start_date": d[30], "end_date": t},
        ),
        (
            "/global/spend/report",
            "group_by=team, 90 days",
            {"group_by": "team", "start_date": d[90], "end_date": t},
        ),
        ("/user/daily/activity", "everyone, 30 days", {"start_date": d[30], "end_date": t}),
        ("/user/daily/activity", "one user, 90 days", {"user_id": user0, "start_date": d[90], "end_date": t}),
        ("/user/daily/activity", "one key, 30 days", {"api_key": tok0, "start_date": d[30], "end_date": t}),
        (
            "/user/daily/activity",
            "one model, 30 days",
            {"model": "model-1", "start_date": d[30], "end_date": t},
        ),
        ("/key/info", "one key (its spend)", {"key": key0}),
        ("/user/info", "one user", {"user_id": user0}),
        ("/team/info", "one team", {"team_id": team0}),
        ("/organization/info", "one org", {"organization_id": org0}),
        (
            "/team/daily/activity",
            "one team, 30 days [LiteLLM]",
            {"team_ids": team0, "start_date": d[30], "end_date": t},
        ),
        (
            "/tag/daily/activity",
            "one tag, 30 days [LiteLLM]",
            {"tags": "env:prod", "start_date": d[30], "end_date": t},
        ),
    ]


def get(conn: http.client.HTTPConnection, path: str, key: str = MASTER_KEY) -> tuple[int, int, float]:
    t0 = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
    resp = conn.getresponse()
    body = resp.read()
    return resp.status, len(body), (time.perf_counter() - t0) * 1000


def post_chat(conn: http.client.HTTPConnection, key: str) -> tuple[int, float]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    t0 = time.perf_counter()
    conn.request("POST", CHAT_PATH, body=json.dumps(CHAT_BODY).encode(), headers=headers)
    resp = conn.getresponse()
    resp.read()
    return resp.status, (time.perf_counter() - t0) * 1000


@dataclass
class Env:
    """The canned upstream and a tollgate on the scale database, for one phase."""

    tmp: Path
    database_url: str
    up_port: int = 0
    servers: list[Server] = field(default_factory=list)

    def config(self, spend_logs: bool) -> Path:
        general: dict[str, object] = {"master_key": MASTER_KEY, "database_url": self.database_url}
        if not spend_logs:
            general["disable_spend_logs"] = True
        config = {
            "model_list": [
                {
                    "model_name": "bench-model",
                    "litellm_params": {
                        "model": "openai/bench-model",
                        "api_base": f"http://127.0.0.1:{self.up_port}/v1",
                        "api_key": "sk-upstream",
                    },
                }
            ],
            "general_settings": general,
        }
        path = self.tmp / f"scale-{len(self.servers)}.yaml"
        path.write_text(json.dumps(config))
        return path

    def tollgate(self, cmd: list[str], name: str, spend_logs: bool = False) -> Server:
        port = free_port()
        argv = [*cmd, "serve", "--config", str(self.config(spend_logs)), "--port", str(port)]
        server = Server(name, argv, port, self.tmp / f"{name}.log", tollgate_env(True))
        self.servers.append(server)
        server.wait_ready(120)
        settle(server.pid, limit=30)
        return server


def _log_slice(offset: int) -> tuple[str, int]:
    """The server log written since ``offset`` (and the new offset)."""
    end = PG_LOG.stat().st_size
    with PG_LOG.open("rb") as f:
        f.seek(offset)
        return f.read(end - offset).decode(errors="replace"), end


@dataclass
class Timed:
    route: str
    label: str
    status: int = 0
    size: int = 0
    times: list[float] = field(default_factory=list)
    sql_ms: float | None = None
    statements: int | None = None


def time_queries(server: Server, shape: Shape, repeat: int) -> list[Timed]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=900)
    out: list[Timed] = []
    try:
        get(
            conn, "/organization/info?" + urlencode({"organization_id": shape.org_id(0)})
        )  # builds the admin app
        for route, label, params in queries(shape, datetime.now(UTC).date()):
            t = Timed(route, label)
            path = f"{route}?{urlencode(params)}" if params else route
            for _ in range(repeat):
                t.status, t.size, ms = get(conn, path)
                t.times.append(ms)
                if t.status == 404:
                    break
            out.append(t)
            med = statistics.median(t.times)
            log(f"{route} {label}: {t.status}, first {t.times[0]:.1f} ms, median {med:.1f} ms")
    finally:
        conn.close()
    return out


def sql_of_queries(server: Server, database: str, shape: Shape, timed: list[Timed]) -> None:
    """One more call of each query on a server whose sessions log every statement: SQL time."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=900)
    try:
        get(conn, "/organization/info?" + urlencode({"organization_id": shape.org_id(0)}))
        for t, (route, _, params) in zip(timed, queries(shape, datetime.now(UTC).date()), strict=True):
            if t.status != 200:
                continue
            offset = PG_LOG.stat().st_size
            get(conn, f"{route}?{urlencode(params)}" if params else route)
            time.sleep(0.1)  # the log lines land after the answer
            text, _ = _log_slice(offset)
            entries = [e for e in _log_entries(text, database) if "tollgate_deployments" not in e[2]]
            t.sql_ms = sum(e[0] for e in entries)
            t.statements = sum(
                1 for e in entries if e[1] in ("execute", "statement") and not _CONTROL.match(e[2])
            )
    finally:
        conn.close()


def query_table(timed: list[Timed], repeat: int) -> list[str]:
    out = [
        "",
        "## Spend API and usage queries",
        "",
        f"Each query {repeat}× over one keep-alive connection with the master key: *first* is the first call "
        f"after start (the admin app already built), *median* over all {repeat}. *SQL ms*: one more call on "
        "a second server whose sessions log every statement (`log_min_duration_statement = 0`), the time "
        "PostgreSQL reports for its statements (parse + bind + execute); the rest is tollgate's.",
        "",
        "| route | query | status | bytes | first ms | median ms | SQL ms | statements | < 200 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for t in timed:
        med = statistics.median(t.times)
        ok = "—" if t.status != 200 else ("yes" if med < TARGET_MS else "**no**")
        sql = "—" if t.sql_ms is None else f"{t.sql_ms:.1f}"
        out.append(
            f"| `{t.route}` | {t.label} | {t.status} | {t.size:,} | {t.times[0]:.1f} | {med:.1f} | {sql} | "
            f"{'—' if t.statements is None else t.statements} | {ok} |"
        )
    return out


def _log_entries(text: str, database: str) -> list[tuple[float, str, str]]:
    """(duration ms, phase, SQL) of ``database``'s statements in a slice of the server log."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        m = _LOG_LINE.match(line)
        if m:
            entries.append([m.group(1), m.group(2), m.group(3)])
        elif line.startswith("\t") and entries:
            entries[-1][2] += "\n" + line.strip()
    out = []
    for db, level, message in entries:
        if db != database or level != "LOG":
            continue
        d = _DURATION.match(message)
        if d:
            out.append((float(d.group(1)), d.group(2) or "statement", " ".join(d.group(3).split())))
    return out


@contextlib.contextmanager
def statement_log(database: str) -> Iterator[None]:
    """Every session opened on ``database`` meanwhile logs each statement with its duration."""
    if PG_LOG.exists():
        pg.psql(f"ALTER DATABASE {database} SET log_min_duration_statement = 0")
    try:
        yield
    finally:
        pg.psql(f"ALTER DATABASE {database} RESET log_min_duration_statement")


def cold_keys(env: Env, cmd: list[str], database: str, shape: Shape, samples: int) -> list[str]:
    if not PG_LOG.exists():
        return ["", f"(cold keys: {PG_LOG} not readable; SQL not captured)"]
    with statement_log(database):
        return _cold_keys(env, cmd, database, shape, samples)


def _cold_keys(env: Env, cmd: list[str], database: str, shape: Shape, samples: int) -> list[str]:
    from spend_scale import key_plaintext

    server = env.tollgate(cmd, "scale-cold")
    keys = shape.keys
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    colds: list[float] = []
    warms: list[float] = []
    per_key: list[list[tuple[float, str, str]]] = []
    try:
        post_chat(conn, MASTER_KEY)
        post_chat(conn, key_plaintext(keys - 1))  # code paths and the connection pool warm
        step = max(1, (keys - 1) // max(samples, 1))
        for i in range(0, keys - 1, step)[:samples]:
            time.sleep(0.05)
            offset = PG_LOG.stat().st_size
            status, cold = post_chat(conn, key_plaintext(i))
            time.sleep(0.2)  # the log line is written after the statement; let it land
            end = PG_LOG.stat().st_size
            _, warm = post_chat(conn, key_plaintext(i))
            if status != 200:
                raise RuntimeError(f"cold key {i} answered {status}:\n{server.log_tail()}")
            colds.append(cold)
            warms.append(warm)
            with PG_LOG.open("rb") as f:
                f.seek(offset)
                chunk = f.read(end - offset).decode(errors="replace")
            per_key.append([e for e in _log_entries(chunk, database) if "tollgate_deployments" not in e[2]])
    finally:
        conn.close()
        server.stop()
    executes = [[e for e in k if e[1] in ("execute", "statement")] for k in per_key]
    counts = [sum(1 for e in k if not _CONTROL.match(e[2])) for k in executes]
    controls = [sum(1 for e in k if _CONTROL.match(e[2])) for k in executes]
    db_ms = [sum(e[0] for e in k) for k in per_key]
    sqls: dict[str, int] = {}
    for k in executes:
        for _, _, sql in k:
            sqls[sql] = sqls.get(sql, 0) + 1
    out = [
        "",
        f"## First request of a cold key ({len(colds)} keys of {keys:,}; 1 worker, spend log off)",
        "",
        f"- chat completion, first request of the key: median {statistics.median(colds):.2f} ms "
        f"(max {max(colds):.2f}); the same key's second request: median {statistics.median(warms):.2f} ms",
        f"- SQL statements per cold key (`log_min_duration_statement = 0`): {min(counts)}–{max(counts)}, "
        f"plus {statistics.median(controls)} transaction-control statements (BEGIN/COMMIT/ROLLBACK); each is "
        f"a round trip. PostgreSQL time per cold key (parse + bind + execute): median "
        f"{statistics.median(db_ms):.3f} ms",
        "",
        "| statement | times (over all cold keys) |",
        "|---|---:|",
    ]
    out += [f"| `{sql[:300]}` | {n} |" for sql, n in sorted(sqls.items(), key=lambda x: -x[1])]
    return out


def _authenticate(port: int, keys: list[str], clients: int = 8) -> int:
    failures: list[int] = []

    def run(share: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            for key in share:
                status, _, _ = get(conn, "/v1/models", key)
                if status != 200:
                    failures.append(status)
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=(keys[i::clients],)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(failures)


def cache_rss(env: Env, cmd: list[str], shape: Shape, warm_keys: int) -> list[str]:
    from spend_scale import key_plaintext

    server = env.tollgate(cmd, "scale-rss")
    top = min(warm_keys, shape.keys)
    steps = [n for n in (0, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000) if n < top] + [top]
    out = [
        "",
        f"## RSS per cached principal (1 worker; GET /v1/models with each of {steps[-1]:,} distinct keys)",
        "",
        "| keys authenticated | RSS MB | KB per key since the previous step | seconds |",
        "|---:|---:|---:|---:|",
    ]
    try:
        _authenticate(server.port, [MASTER_KEY], clients=1)
        prev_n, prev_rss = 0, 0.0
        for n in steps:
            t0 = time.perf_counter()
            failed = _authenticate(server.port, [key_plaintext(i) for i in range(prev_n, n)])
            secs = time.perf_counter() - t0
            settle(server.pid)
            rss, _ = tree_rss_mb(server.pid)
            per = f"{(rss - prev_rss) * 1024 / (n - prev_n):.2f}" if n > prev_n else "—"
            out.append(
                f"| {n:,} | {rss:.1f} | {per} | {secs:.1f} |" + (f" ({failed} failed)" if failed else "")
            )
            log(f"rss after {n} keys: {rss:.1f} MB")
            prev_n, prev_rss = n, rss
    finally:
        server.stop()
    out.append("")
    out.append(
        "The principal cache is an LRU of `cache_size` entries (`auth/keys.py`, 10,000 by default) with "
        "a TTL: past that size RSS should stop growing."
    )
    return out


def run_probes(args: argparse.Namespace, shape: Shape, database: str, url: str, cmd: list[str]) -> list[str]:
    out: list[str] = []
    with TemporaryDirectory(prefix="tollgate-scale-") as tmpdir:
        env = Env(Path(tmpdir), url, up_port=free_port())
        upstream = Server(
            "upstream", upstream_argv(env.up_port, 1), env.up_port, env.tmp / "up.log", base_env()
        )
        try:
            upstream.wait_ready(30)
            if args.rows and not args.skip_queries:
                server = env.tollgate(cmd, "scale-queries")
                try:
                    timed = time_queries(server, shape, args.repeat)
                finally:
                    server.stop()
                if PG_LOG.exists():
                    with statement_log(database):
                        server = env.tollgate(cmd, "scale-queries-sql")
                        try:
                            sql_of_queries(server, database, shape, timed)
                        finally:
                            server.stop()
                out += query_table(timed, args.repeat)
            if not args.skip_principals:
                out += cold_keys(env, cmd, database, shape, args.cold_samples)
                warm = args.warm_keys if args.warm_keys is not None else min(shape.keys, 20_000)
                out += cache_rss(env, cmd, shape, warm)
        finally:
            for server in [*env.servers, upstream]:
                server.stop()
    return out
