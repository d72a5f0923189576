"""`make bench`: tollgate and the LiteLLM proxy side by side in front of one canned upstream.

What runs, all on 127.0.0.1:
  * ``bench/canned_upstream.py`` — a canned OpenAI-compatible upstream (uvloop + asyncio Protocol);
  * the upstream measured alone, then tollgate (1 and 2 workers) and the LiteLLM proxy (1 and 2
    workers, from a throwaway venv under ``.bench/``, never a tollgate dependency) in front of it,
    each with the same LiteLLM-format config;
  * ``wrk`` as the load generator (JSON and SSE, concurrency 1/16/64), plus a small asyncio client
    for streaming time-to-first-byte.

Per cell it reports rps, p50/p99 latency (wrk ``--latency``) and the server's CPU milliseconds per
completed request: utime+stime of the server process and all its descendants, read from
``/proc/<pid>/stat`` before and after the wrk run. Per server it also reports cold start (process
start to the first 200 on GET /health/liveliness) and idle RSS (summed over the process tree).

Output: a Markdown table on stdout and in ``bench/results/latest.md`` (raw numbers in
``latest.json``). ``--profile`` instead records a py-spy flame graph of a tollgate worker under load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from common import CONFIG_TEMPLATE, LITELLM_SPEC, LITELLM_VERSION, MASTER_KEY, RESULTS, WRK_SCRIPTS, log
from flame import profile
from loadgen import ensure_wrk
from measure import ServerResult, Settings, bench_server, run_one
from procstat import cpu_model, loadavg
from production import run_production
from production_report import render_production
from report import render, scenario_lines
from scenarios import EXTRAS, run_scenarios
from servers import (
    Server,
    base_env,
    ensure_bench_venv,
    free_port,
    litellm_argv,
    litellm_env,
    tollgate_argv,
    tollgate_env,
    upstream_argv,
)

PRODUCTION = ("production", "production-nolog", "production-exact")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 s per cell smoke run")
    ap.add_argument("--skip-litellm", action="store_true", help="do not install or run the LiteLLM proxy")
    ap.add_argument("--skip-tollgate", action="store_true", help="do not run tollgate")
    ap.add_argument(
        "--tollgate-cmd",
        default=None,
        help="command that runs tollgate, e.g. '.venv/bin/tollgate' (default: python -m tollgate)",
    )
    ap.add_argument("--seconds", type=float, default=None, help="seconds per cell (default 5, --quick 2)")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--modes", default="json,sse")
    ap.add_argument("--workers", default="1,2", help="gateway worker counts to measure")
    ap.add_argument("--upstream-workers", type=int, default=1)
    ap.add_argument("--ready-timeout", type=float, default=120.0)
    ap.add_argument("--out", type=Path, default=RESULTS / "latest.md")
    ap.add_argument(
        "--scenarios",
        default="base",
        help="comma list: base (upstream alone, tollgate and LiteLLM side by side) and/or the tollgate-only "
        f"variants {', '.join(EXTRAS)} ('extras' = all of them; see bench/scenarios.py); production "
        "(issue 17: 2 workers, PostgreSQL, Redis, a limited key chain; bench/production.py) and "
        "production-nolog (the same with the spend log off, for its cost), production-exact (the same "
        "with counter_leases off: every counted request to Redis one by one)",
    )
    ap.add_argument(
        "--production-rounds",
        type=int,
        default=None,
        help="interleaved rounds of the production cells (default 2, --quick 1)",
    )
    ap.add_argument(
        "--profile-scenario",
        choices=("plain", "production"),
        default="plain",
        help="--profile: one worker with the master key (plain) or the production shape (2 workers)",
    )
    ap.add_argument("--profile", action="store_true", help="record a py-spy flame graph instead of the table")
    ap.add_argument("--profile-target", choices=("tollgate", "litellm"), default="tollgate")
    ap.add_argument("--profile-mode", choices=("json", "sse", "sse-usage"), default="json")
    ap.add_argument("--profile-seconds", type=float, default=10.0)
    ap.add_argument("--profile-conc", type=int, default=16)
    ap.add_argument(
        "--profile-key",
        choices=("production", "master"),
        default="production",
        help="--profile-scenario production: the key wrk sends",
    )
    ap.add_argument(
        "--profile-native", action="store_true", help="py-spy --native: C extension frames too (slower)"
    )
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def _terminate(signum: int, _frame: object) -> None:
        # Turn SIGTERM into an exception so the finally blocks stop every server we started.
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    default_cmd = args.tollgate_cmd is None
    cmd = [sys.executable, "-m", "tollgate"] if default_cmd else shlex.split(args.tollgate_cmd)
    quick = args.quick
    s = Settings(
        wrk=ensure_wrk(),
        seconds=args.seconds or (2.0 if quick else 5.0),
        warmup=1.0 if quick else 2.0,
        concurrency=[int(c) for c in args.concurrency.split(",")],
        modes=[m for m in args.modes.split(",") if m in WRK_SCRIPTS],
        ttfb_samples=20 if quick else 100,
        ready_timeout=args.ready_timeout,
    )
    workers = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="tollgate-bench-") as tmpdir:
        tmp = Path(tmpdir)
        if args.profile:
            return profile(args, s, cmd, default_cmd, tmp)
        return run_table(args, s, cmd, default_cmd, workers, tmp)


def run_table(
    args: argparse.Namespace, s: Settings, cmd: list[str], default_cmd: bool, workers: list[int], tmp: Path
) -> int:
    started = time.perf_counter()
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    production = [n for n in names if n in PRODUCTION]
    extras = [n for n in names if n != "base" and n not in PRODUCTION]
    if "extras" in extras:
        extras = [*EXTRAS, *(n for n in extras if n not in EXTRAS and n != "extras")]
    if "base" not in names:
        args.skip_litellm = True
    extra_lines: list[str] = []
    json_extra: dict[str, object] = {}
    loadavg_start = loadavg()
    litellm_venv: Path | None = None
    litellm_note = "skipped (--skip-litellm)"
    if not args.skip_litellm:
        try:
            litellm_venv = ensure_bench_venv([LITELLM_SPEC], f"litellm-{LITELLM_VERSION}")
            litellm_note = f"{LITELLM_VERSION} ({litellm_venv})"
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            litellm_note = f"not installed: {exc}"
            log(litellm_note)
    results: list[ServerResult] = []
    up_port = free_port()
    upstream = Server(
        "upstream", upstream_argv(up_port, args.upstream_workers), up_port, tmp / "upstream.log", base_env()
    )
    try:
        # The upstream alone: the same cells, CPU measured on the upstream itself.
        up = ServerResult(f"upstream alone ({args.upstream_workers}w)", "upstream", args.upstream_workers)
        try:
            if "base" in names:
                results.append(up)
                bench_server(s, upstream, up)
            else:
                upstream.wait_ready(s.ready_timeout)
        except Exception as exc:
            up.error = str(exc)
            raise SystemExit(f"the canned upstream does not work: {exc}") from exc
        config = tmp / "config.yaml"
        config.write_text(CONFIG_TEMPLATE.format(port=up_port, key=MASTER_KEY))
        for w in workers:
            if args.skip_tollgate or "base" not in names:
                break
            r = ServerResult(f"tollgate {w}w", "tollgate", w)
            results.append(r)
            port = free_port()
            run_one(s, r, tollgate_argv(cmd, config, port, w), port, tollgate_env(default_cmd), tmp)
        for w in workers:
            if litellm_venv is None or "base" not in names:
                break
            r = ServerResult(f"litellm {w}w", "litellm", w)
            results.append(r)
            port = free_port()
            run_one(s, r, litellm_argv(litellm_venv, config, port, w), port, litellm_env(), tmp)
        if extras:
            run = run_scenarios(s, extras, cmd, tollgate_env(default_cmd), up_port, tmp)
            results += run.results
            refs = {name: (v.reference, v.target) for name, v in run.variants.items()}
            extra_lines = scenario_lines(run.results, refs, run.notes)
        if production:
            rounds = args.production_rounds or (1 if args.quick else 2)
            prod = run_production(s, production, cmd, tollgate_env(default_cmd), up_port, tmp, rounds)
            extra_lines += render_production(prod)
            json_extra["production"] = asdict(prod)
    finally:
        upstream.stop()
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{os.cpu_count()} CPUs, {cpu_model()}, {platform.platform()}",
        "python": platform.python_version(),
        "tollgate command": shlex.join(cmd),
        "litellm": litellm_note,
        "load": f"wrk, {s.seconds:.0f}s per cell after a {s.warmup:.0f}s warm-up per mode; 1 thread at c=1, "
        f"else 2; upstream: bench/canned_upstream.py with {args.upstream_workers} worker(s)",
        "wall time": f"{time.perf_counter() - started:.0f}s",
        "load average (start → end)": f"{loadavg_start} → {loadavg()} (other work on the box skews all rows)",
    }
    report = render(results, s, meta, extra_lines)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    args.out.with_suffix(".json").write_text(
        json.dumps(
            {"meta": meta, "results": [asdict(r) for r in results], **json_extra}, indent=2, default=str
        )
    )
    log(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
