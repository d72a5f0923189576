"""The principal cache at scale, for ``spend_scale.py``: the first request of never-used keys
(time, and the SQL each issues) and RSS per cached principal."""

from __future__ import annotations

import http.client
import statistics
import threading
import time

from common import MASTER_KEY, log
from pg_statements import CONTROL, PG_LOG, entries, statement_log
from procstat import settle, tree_rss_mb
from scale_data import Shape, key_plaintext
from scale_probes import Env, get, post_chat


def cold_keys(env: Env, cmd: list[str], database: str, shape: Shape, samples: int) -> list[str]:
    if not PG_LOG.exists():
        return ["", f"(cold keys: {PG_LOG} not readable; SQL not captured)"]
    with statement_log(database):
        return _cold_keys(env, cmd, database, shape, samples)


def _cold_keys(env: Env, cmd: list[str], database: str, shape: Shape, samples: int) -> list[str]:
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
            per_key.append([e for e in entries(chunk, database) if "tollgate_deployments" not in e[2]])
    finally:
        conn.close()
        server.stop()
    executes = [[e for e in k if e[1] in ("execute", "statement")] for k in per_key]
    counts = [sum(1 for e in k if not CONTROL.match(e[2])) for k in executes]
    controls = [sum(1 for e in k if CONTROL.match(e[2])) for k in executes]
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
