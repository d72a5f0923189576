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
import http.client
import json
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from urllib.parse import urlencode

from common import CHAT_BODY, CHAT_PATH, MASTER_KEY, log
from pg_statements import CONTROL, PG_LOG, entries, log_slice, statement_log
from procstat import settle
from scale_data import Shape, key_plaintext, token
from servers import Server, base_env, free_port, tollgate_env, upstream_argv

TARGET_MS = 200.0


def queries(shape: Shape, today: date) -> list[tuple[str, str, dict[str, object]]]:
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
        ("/ui/api/usage", "UI usage by key, 30 days", {"group_by": "key"}),
        ("/ui/api/usage", "UI usage by team, 30 days", {"group_by": "team"}),
        ("/ui/api/usage", "UI usage by model, 90 days", {"group_by": "model", "start_date": d[90]}),
        ("/ui/api/usage", "UI usage of one user by model", {"group_by": "model", "user_id": user0}),
        ("/ui/api/budget", "UI budget status of one team", {"team_id": team0}),
        ("/ui/api/budget", "UI budget status of one key", {"key": key0}),
        ("/spend/logs/ui", "UI logs, one model, page 1 (50)", {"model": "model-1"}),
        ("/spend/logs/ui", "UI logs, failures, page 1 (50)", {"status_filter": "failure"}),
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
            text, _ = log_slice(offset)
            found = [e for e in entries(text, database) if "tollgate_deployments" not in e[2]]
            t.sql_ms = sum(e[0] for e in found)
            t.statements = sum(
                1 for e in found if e[1] in ("execute", "statement") and not CONTROL.match(e[2])
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
                from scale_principals import cache_rss, cold_keys

                out += cold_keys(env, cmd, database, shape, args.cold_samples)
                warm = args.warm_keys if args.warm_keys is not None else min(shape.keys, 20_000)
                out += cache_rss(env, cmd, shape, warm)
        finally:
            for server in [*env.servers, upstream]:
                server.stop()
    return out
