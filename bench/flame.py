"""``run.py --profile``: py-spy profiles of the gateway's workers under wrk load.

``--profile-scenario plain`` (default): one worker, the master key, the base config.
``--profile-scenario production``: the production shape (``production_shape.py``: 2 workers,
PostgreSQL spend log, Redis counters, the limited org → team → user → key chain), driven with the
production key (``--profile-key master``: the master key on the same server, for comparison);
``--profile-mode sse-usage`` for streams with include_usage.

Output in ``bench/results/`` (``NAME`` = ``<target>-<scenario>-<mode>``):
  * ``flame-NAME.svg``  — py-spy's flame graph (open in a browser);
  * ``stacks-NAME.txt`` — py-spy's raw collapsed stacks (``--format raw``; speedscope.app opens it);
  * ``profile-NAME.md`` — ``stacks.py``'s summary: self and inclusive share by function, module and
    package, and the tollgate-code buckets (also printed).
The flame graph and the raw stacks are two recordings of ``--profile-seconds`` each under the same load.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pg
from common import CONFIG_TEMPLATE, LITELLM_SPEC, LITELLM_VERSION, MASTER_KEY, RESULTS, log
from loadgen import run_wrk, wrk_script
from measure import Settings
from production_shape import migrate, production_config, production_key, write_config
from scenarios import REDIS_PORT, clear_redis
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
from stacks import summarise


def py_spy() -> str:
    """py-spy beside the driver's interpreter (``pip install py-spy`` into .venv), else the bench venv's."""
    local = Path(sys.executable).parent / "py-spy"
    if local.exists():
        return str(local)
    found = shutil.which("py-spy")
    if found:
        return found
    return str(ensure_bench_venv(["py-spy"], "py-spy") / "bin" / "py-spy")


def record(spy: str, pid: int, secs: int, fmt: str, out: Path, native: bool = False) -> None:
    # --gil: only threads holding the GIL, i.e. running Python. Without it, uvicorn's supervisor
    # ping thread (blocked reading a pipe) and uvloop waiting in epoll count as busy.
    argv = [spy, "record", "--pid", str(pid), "--subprocesses", "--gil", "--full-filenames", "--rate", "250"]
    if native:
        argv.append("--native")
    argv += ["--duration", str(secs), "--format", fmt, "-o", str(out)]
    log("running " + shlex.join(argv))
    subprocess.run(argv, check=True, timeout=secs + 60, stdout=subprocess.DEVNULL)


def profile(args: argparse.Namespace, s: Settings, cmd: list[str], default_cmd: bool, tmp: Path) -> int:
    spy = py_spy()
    up_port, gw_port = free_port(), free_port()
    RESULTS.mkdir(parents=True, exist_ok=True)
    upstream = Server(
        "upstream", upstream_argv(up_port, args.upstream_workers), up_port, tmp / "up.log", base_env()
    )
    servers = [upstream]
    database: str | None = None
    prefix: str | None = None
    key = MASTER_KEY
    scenario = args.profile_scenario if args.profile_target == "tollgate" else "plain"
    try:
        upstream.wait_ready(s.ready_timeout)
        config = tmp / "config.yaml"
        config.write_text(CONFIG_TEMPLATE.format(port=up_port, key=MASTER_KEY))
        if args.profile_target == "litellm":
            lv = ensure_bench_venv([LITELLM_SPEC], f"litellm-{LITELLM_VERSION}")
            gw = Server(
                "litellm", litellm_argv(lv, config, gw_port, 1), gw_port, tmp / "gw.log", litellm_env()
            )
        elif scenario == "production":
            database, url = pg.create_database()
            prefix = f"bench-{os.urandom(4).hex()}"
            env = tollgate_env(default_cmd)
            env.update(TOLLGATE_REDIS_PREFIX=prefix, TOLLGATE_SPEND_SPILL_DIR=str(tmp / "spill"))
            config = write_config(tmp, "production", production_config(up_port, url, REDIS_PORT, True))
            migrate(cmd, config, env)
            gw = Server("tollgate", tollgate_argv(cmd, config, gw_port, 2), gw_port, tmp / "gw.log", env)
        else:
            gw = Server(
                "tollgate",
                tollgate_argv(cmd, config, gw_port, 1),
                gw_port,
                tmp / "gw.log",
                tollgate_env(default_cmd),
            )
        servers.append(gw)
        gw.wait_ready(s.ready_timeout)
        if scenario == "production":
            time.sleep(2)  # every worker up, not only the first to answer
            made = production_key(gw_port)
            key = made if args.profile_key == "production" else MASTER_KEY
        run_wrk(s.wrk, gw_port, args.profile_mode, args.profile_conc, s.warmup, key)
        who = (
            f"-{args.profile_key}-key"
            if scenario == "production" and args.profile_key != "production"
            else ""
        )
        name = f"{args.profile_target}-{scenario}{who}-{args.profile_mode}"
        secs = max(2, round(args.profile_seconds))
        load = subprocess.Popen(
            [
                s.wrk,
                "-t2",
                f"-c{args.profile_conc}",
                f"-d{2 * secs + 8}s",
                "-s",
                str(wrk_script(args.profile_mode, key)),
                f"http://127.0.0.1:{gw_port}/v1/chat/completions",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(1)
            raw = RESULTS / f"stacks-{name}.txt"
            record(spy, gw.pid, secs, "raw", raw, args.profile_native)
            svg = RESULTS / f"flame-{name}.svg"
            record(spy, gw.pid, secs, "flamegraph", svg, args.profile_native)
        finally:
            stdout, _ = load.communicate(timeout=2 * secs + 40)
        print(stdout)
        summary = summarise(
            raw.read_text(), title=f"py-spy: {name}, c={args.profile_conc}, {secs} s at 250 Hz"
        )
        md = RESULTS / f"profile-{name}.md"
        md.write_text(summary)
        print(summary)
        print(f"flame graph: {svg}\nraw stacks: {raw}\nsummary: {md}")
        return 0
    except (RuntimeError, subprocess.SubprocessError) as exc:
        log(f"profile failed: {exc}")
        return 1
    finally:
        for srv in reversed(servers):
            srv.stop()
        if database is not None:
            pg.drop_database(database)
        if prefix is not None:
            clear_redis(prefix)
