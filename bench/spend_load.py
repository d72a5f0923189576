"""Spend-log exactness under load: N requests (default 10,000) through ``tollgate serve --workers 2``
with spend logs in a fresh PostgreSQL database, then SIGTERM the server and check that the table
holds exactly N rows whose spend sums to N × the per-request price.

The canned upstream's JSON answer always reports 9 prompt and 16 completion tokens; the bench
deployment is priced with ``model_info`` input/output_cost_per_token, so every row costs
9 × IN_PRICE + 16 × OUT_PRICE. Exit status 0 only if both figures match.

    /work/venv/bin/python bench/spend_load.py [--requests 10000] [--clients 16]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import pg
from common import CHAT_BODY, CHAT_PATH, MASTER_KEY, log
from servers import Server, base_env, free_port, tollgate_env, upstream_argv

IN_PRICE, OUT_PRICE = Decimal("0.000001"), Decimal("0.000002")
PROMPT_TOKENS, COMPLETION_TOKENS = 9, 16  # bench/canned_upstream.py's fixed JSON usage
PER_REQUEST = PROMPT_TOKENS * IN_PRICE + COMPLETION_TOKENS * OUT_PRICE


def config(upstream_port: int, database_url: str) -> dict[str, object]:
    return {
        "model_list": [
            {
                "model_name": "bench-model",
                "litellm_params": {
                    "model": "openai/bench-model",
                    "api_base": f"http://127.0.0.1:{upstream_port}/v1",
                    "api_key": "sk-upstream",
                },
                "model_info": {
                    "input_cost_per_token": float(IN_PRICE),
                    "output_cost_per_token": float(OUT_PRICE),
                },
            }
        ],
        "general_settings": {"master_key": MASTER_KEY, "database_url": database_url},
    }


def client(port: int, count: int, statuses: list[int]) -> None:
    """``count`` sequential requests on one keep-alive connection."""
    body = json.dumps(CHAT_BODY).encode()
    headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
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


def drive(port: int, total: int, clients: int) -> tuple[list[int], float]:
    statuses: list[int] = []  # list.append is atomic under the GIL
    shares = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    threads = [threading.Thread(target=client, args=(port, n, statuses)) for n in shares]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses, time.perf_counter() - t0


def terminate(server: Server, timeout: float = 120.0) -> float:
    """SIGTERM the whole group and wait for a clean exit (the spend log flushes on shutdown)."""
    t0 = time.perf_counter()
    os.killpg(server.pid, signal.SIGTERM)
    server.proc.wait(timeout=timeout)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="tollgate-spend-load-") as tmpdir:
        tmp = Path(tmpdir)
        up_port, gw_port = free_port(), free_port()
        upstream = Server("upstream", upstream_argv(up_port, 1), up_port, tmp / "upstream.log", base_env())
        database, url = pg.create_database()
        servers = [upstream]
        try:
            upstream.wait_ready(30)
            path = tmp / "config.yaml"
            path.write_text(json.dumps(config(up_port, url), indent=2))
            env = tollgate_env(True)
            subprocess.run(
                [py, "-m", "tollgate", "migrate", "--config", str(path)],
                env=env,
                check=True,
                capture_output=True,
            )
            argv = [py, "-m", "tollgate", "serve", "--config", str(path), "--port", str(gw_port)]
            argv += ["--workers", str(args.workers)]
            gateway = Server("tollgate", argv, gw_port, tmp / "tollgate.log", env)
            servers.append(gateway)
            gateway.wait_ready(120)
            time.sleep(2)  # every worker up, not only the first to answer
            log(f"sending {args.requests} requests from {args.clients} clients (load {loadavg()})")
            statuses, seconds = drive(gw_port, args.requests, args.clients)
            ok = statuses.count(200)
            log(f"{ok} × 200 of {len(statuses)} in {seconds:.1f}s ({len(statuses) / seconds:.0f} rps)")
            stop_s = terminate(gateway)
            rows, total = pg.spend_figures(database)
            expected = args.requests * PER_REQUEST
            rows_ok = rows == args.requests == ok
            sum_ok = Decimal(total) == expected
            print(f"database:           {database} (dropped afterwards)")
            rate = f"in {seconds:.1f}s, {args.workers} workers"
            print(f"requests sent:      {len(statuses)} ({ok} answered 200) {rate}")
            print(f"SIGTERM → exit:     {stop_s:.2f}s (return code {gateway.proc.returncode})")
            print(f"spend rows:         {rows} (expected {args.requests}) {'OK' if rows_ok else 'MISMATCH'}")
            summed = Decimal(total).normalize()
            print(f"summed spend:       {summed} (expected {args.requests} × {PER_REQUEST}")
            print(f"                    = {expected.normalize()}) {'OK' if sum_ok else 'MISMATCH'}")
            # The rollups, kept by both workers' writers concurrently, must say the same.
            rolled = pg.psql(
                "SELECT coalesce(sum(requests), 0), coalesce(sum(spend), 0) FROM tollgate_spend_daily "
                "WHERE view = 'all'", database,
            ).split("|")
            rolled_ok = int(rolled[0]) == rows and Decimal(rolled[1]) == Decimal(total)
            print(f"daily rollup:       {rolled[0]} requests, {Decimal(rolled[1]).normalize()} "
                  f"{'OK' if rolled_ok else 'MISMATCH'}")
            print(f"load average now:   {loadavg()}")
            if not rows_ok or not sum_ok or not rolled_ok:
                print(gateway.log_tail(30))
            return 0 if rows_ok and sum_ok and rolled_ok else 1
        finally:
            for server in reversed(servers):
                server.stop()
            pg.drop_database(database)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    sys.exit(main())
