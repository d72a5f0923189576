"""``run.py --profile``: a py-spy flame graph of one gateway worker under wrk load."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import time
from pathlib import Path

from common import (
    CHAT_PATH,
    CONFIG_TEMPLATE,
    LITELLM_SPEC,
    LITELLM_VERSION,
    MASTER_KEY,
    RESULTS,
    WRK_SCRIPTS,
    log,
)
from loadgen import run_wrk
from measure import Settings
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


def profile(args: argparse.Namespace, s: Settings, cmd: list[str], default_cmd: bool, tmp: Path) -> int:
    venv = ensure_bench_venv(["py-spy"], "py-spy")
    up_port, gw_port = free_port(), free_port()
    config = tmp / "config.yaml"
    config.write_text(CONFIG_TEMPLATE.format(port=up_port, key=MASTER_KEY))
    RESULTS.mkdir(parents=True, exist_ok=True)
    upstream = Server(
        "upstream", upstream_argv(up_port, args.upstream_workers), up_port, tmp / "up.log", base_env()
    )
    servers = [upstream]
    try:
        upstream.wait_ready(s.ready_timeout)
        if args.profile_target == "litellm":
            lv = ensure_bench_venv([LITELLM_SPEC], f"litellm-{LITELLM_VERSION}")
            gw = Server(
                "litellm", litellm_argv(lv, config, gw_port, 1), gw_port, tmp / "gw.log", litellm_env()
            )
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
        run_wrk(s.wrk, gw_port, args.profile_mode, 16, s.warmup)
        out = RESULTS / f"flame-{args.profile_target}-{args.profile_mode}.svg"
        secs = max(2, round(args.profile_seconds))
        load = subprocess.Popen(
            [
                s.wrk,
                "-t2",
                f"-c{args.profile_conc}",
                f"-d{secs + 3}s",
                "-s",
                str(WRK_SCRIPTS[args.profile_mode]),
                f"http://127.0.0.1:{gw_port}{CHAT_PATH}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(1)
            spy = [
                str(venv / "bin" / "py-spy"),
                "record",
                "--pid",
                str(gw.pid),
                "--subprocesses",
                "--rate",
                "250",
                "--duration",
                str(secs),
                "--format",
                "flamegraph",
                "-o",
                str(out),
            ]
            log("running " + shlex.join(spy))
            subprocess.run(spy, check=True, timeout=secs + 60)
        finally:
            stdout, _ = load.communicate(timeout=secs + 30)
        print(stdout)
        print(f"flame graph: {out}")
        return 0
    except (RuntimeError, subprocess.SubprocessError) as exc:
        log(f"profile failed: {exc}")
        return 1
    finally:
        for srv in reversed(servers):
            srv.stop()
