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
import asyncio
import contextlib
import http.client
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
STATE = REPO / ".bench"
BENCH_VENV = STATE / "venv"
LITELLM_VERSION = "1.106.2"
LITELLM_SPEC = f"litellm[proxy]=={LITELLM_VERSION}"
MASTER_KEY = "sk-bench"
LIVENESS = "/health/liveliness"
CHAT_PATH = "/v1/chat/completions"
CHAT_BODY = {"model": "bench-model", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 32}
WRK_SCRIPTS = {"json": BENCH / "wrk" / "chat_json.lua", "sse": BENCH / "wrk" / "chat_sse.lua"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

CONFIG_TEMPLATE = """\
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: "http://127.0.0.1:{port}/v1"
      api_key: sk-upstream
general_settings: {{master_key: {key}}}
"""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# /proc accounting


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    cpu_ticks: int  # utime + stime
    child_ticks: int  # cutime + cstime: reaped children
    rss_bytes: int


def read_stat(pid: int) -> ProcStat | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = raw[raw.rfind(b")") + 2 :].split()
    return ProcStat(
        pid=pid,
        ppid=int(rest[1]),
        cpu_ticks=int(rest[11]) + int(rest[12]),
        child_ticks=int(rest[13]) + int(rest[14]),
        rss_bytes=int(rest[21]) * PAGE_SIZE,
    )


def process_tree(root: int) -> list[ProcStat]:
    """The root and all its live descendants."""
    stats: dict[int, ProcStat] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = read_stat(int(entry))
            if st is not None:
                stats[st.pid] = st
    if root not in stats:
        return []
    children: dict[int, list[int]] = {}
    for st in stats.values():
        children.setdefault(st.ppid, []).append(st.pid)
    out: list[ProcStat] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        out.append(stats[pid])
        todo.extend(children.get(pid, ()))
    return out


def tree_cpu_seconds(root: int) -> float:
    tree = process_tree(root)
    ticks = sum(st.cpu_ticks for st in tree)
    # Children that already exited and were reaped are folded into their parents' cutime/cstime.
    ticks += sum(st.child_ticks for st in tree)
    return ticks / CLK_TCK


def settle(root: int, limit: float = 5.0) -> None:
    """Wait until the server is idle, so a backlog left by the last run is not billed to the next."""
    deadline = time.monotonic() + limit
    last = tree_cpu_seconds(root)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = tree_cpu_seconds(root)
        if now - last <= 0.021:  # at most two clock ticks in 200 ms (10% of a core): idle
            return
        last = now


def tree_rss_mb(root: int) -> tuple[float, int]:
    tree = process_tree(root)
    return sum(st.rss_bytes for st in tree) / 2**20, len(tree)


# ---------------------------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process in its own process group; ``stop()`` takes the whole group down."""

    def __init__(self, name: str, argv: Sequence[str], port: int, log_path: Path, env: dict[str, str]):
        self.name = name
        self.port = port
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        log(f"start {name}: {shlex.join(argv)}")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPO,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float) -> float:
        """Poll GET /health/liveliness; return seconds from process start to the first 200."""
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if http_status(self.port, "GET", LIVENESS, timeout=1.0) == 200:
                return time.perf_counter() - self.started
            time.sleep(0.01)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        pids = [st.pid for st in process_tree(self.pid)]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        # SIGKILL whatever is left: the group, and any descendant that left the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._log.close()


def http_status(port: int, method: str, path: str, timeout: float, body: bytes | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# wrk


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found: apt-get install -y wrk")
    install = ["apt-get", "install", "-y", "wrk"]
    if subprocess.run(install, stdout=subprocess.DEVNULL, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], stdout=subprocess.DEVNULL, check=False)
        subprocess.run(install, stdout=subprocess.DEVNULL, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install -y wrk")
    return found


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _latency_ms(text: str, pct: str) -> float | None:
    m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    return float(m.group(1)) * _UNIT_MS[m.group(2)] if m else None


def parse_wrk(text: str) -> dict[str, float]:
    """rps, p50_ms, p99_ms, requests, errors from ``wrk --latency`` output."""
    out: dict[str, float] = {}
    if m := re.search(r"Requests/sec:\s+([\d.]+)", text):
        out["rps"] = float(m.group(1))
    if m := re.search(r"(\d+) requests in", text):
        out["requests"] = float(m.group(1))
    for pct in ("50", "99"):
        if (v := _latency_ms(text, pct)) is not None:
            out[f"p{pct}_ms"] = v
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        errors += sum(int(g) for g in m.groups())
    out["errors"] = float(errors)
    return out


def run_wrk(wrk: str, port: int, mode: str, conc: int, seconds: float) -> tuple[dict[str, float], str]:
    threads = 1 if conc == 1 else 2
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{conc}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(WRK_SCRIPTS[mode]),
        f"http://127.0.0.1:{port}{CHAT_PATH}",
    ]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    return parse_wrk(res.stdout), res.stdout + res.stderr


# ---------------------------------------------------------------------------------------------
# streaming time-to-first-byte


async def _ttfb_once(port: int, payload: bytes) -> tuple[float, float, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = (
            f"POST {CHAT_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {MASTER_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
        ).encode() + payload
        t0 = time.perf_counter()
        writer.write(request)
        buf = b""
        first: float | None = None
        while chunk := await reader.read(65536):
            buf += chunk
            if first is None:
                head_end = buf.find(b"\r\n\r\n")
                if head_end >= 0 and b"data:" in buf[head_end:]:
                    first = time.perf_counter() - t0
        total = time.perf_counter() - t0
        status = int(buf[9:12]) if buf.startswith(b"HTTP/1.") else 0
        if first is None or status != 200:
            raise RuntimeError(f"bad streaming answer (status {status}): {buf[:200]!r}")
        return first, total, status
    finally:
        writer.close()


async def _ttfb(port: int, samples: int) -> list[tuple[float, float]]:
    payload = json.dumps({**CHAT_BODY, "stream": True}).encode()
    out = []
    for _ in range(samples):
        first, total, _status = await asyncio.wait_for(_ttfb_once(port, payload), timeout=15)
        out.append((first, total))
    return out


def measure_ttfb(port: int, samples: int) -> dict[str, float]:
    """Sequential streaming requests on fresh connections: median/p90 TTFB and total, in ms."""
    pairs = asyncio.run(_ttfb(port, samples))
    firsts = sorted(p[0] * 1000 for p in pairs)
    totals = sorted(p[1] * 1000 for p in pairs)
    return {
        "ttfb_p50_ms": statistics.median(firsts),
        "ttfb_p90_ms": firsts[int(len(firsts) * 0.9) - 1],
        "total_p50_ms": statistics.median(totals),
    }


# ---------------------------------------------------------------------------------------------
# the bench venv (LiteLLM, py-spy): never part of tollgate's own environment


def ensure_bench_venv(packages: Sequence[str], marker: str) -> Path:
    """Create ``.bench/venv`` and pip-install ``packages`` once; a marker file caches the install."""
    py = BENCH_VENV / "bin" / "python"
    done = BENCH_VENV / f".installed-{marker}"
    if done.exists() and py.exists():
        return BENCH_VENV
    STATE.mkdir(exist_ok=True)
    install_log = STATE / "install.log"
    with open(install_log, "ab") as out:
        if not py.exists():
            log(f"creating {BENCH_VENV}")
            subprocess.run(
                [sys.executable, "-m", "venv", str(BENCH_VENV)], check=True, stdout=out, stderr=out
            )
        log(f"pip install {' '.join(packages)} into {BENCH_VENV} (log: {install_log})")
        res = subprocess.run(
            [str(py), "-m", "pip", "install", *packages], stdout=out, stderr=out, check=False
        )
    if res.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(packages)} failed; see {install_log}")
    done.touch()
    return BENCH_VENV


# ---------------------------------------------------------------------------------------------
# the run


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


@dataclass
class Settings:
    wrk: str
    seconds: float
    warmup: float
    concurrency: list[int]
    modes: list[str]
    ttfb_samples: int
    ready_timeout: float


def bench_server(s: Settings, server: Server, result: ServerResult) -> None:
    """Cold start, warm-up, idle RSS, the wrk cells and TTFB for one running server."""
    result.cold_start_s = server.wait_ready(s.ready_timeout)
    # With several workers the first 200 may come while the others still import: wait for quiet.
    settle(server.pid, limit=s.ready_timeout)
    result.settled_s = time.perf_counter() - server.started
    log(f"{result.name}: first 200 after {result.cold_start_s:.2f}s, idle after {result.settled_s:.2f}s")
    result.rss_ready_mb, _ = tree_rss_mb(server.pid)
    probe = json.dumps(CHAT_BODY).encode()
    status = http_status(server.port, "POST", CHAT_PATH, timeout=30, body=probe)
    if status != 200:
        raise RuntimeError(f"{result.name}: probe chat completion answered {status}:\n{server.log_tail()}")
    for mode in s.modes:
        run_wrk(s.wrk, server.port, mode, 16, s.warmup)
    time.sleep(0.5)
    result.rss_idle_mb, result.processes = tree_rss_mb(server.pid)
    for mode in s.modes:
        for conc in s.concurrency:
            settle(server.pid)
            cpu0 = tree_cpu_seconds(server.pid)
            parsed, raw = run_wrk(s.wrk, server.port, mode, conc, s.seconds)
            cpu1 = tree_cpu_seconds(server.pid)
            requests = int(parsed.get("requests", 0))
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
        result.ttfb = measure_ttfb(server.port, s.ttfb_samples)
        log(f"{result.name}: streaming TTFB p50 {result.ttfb['ttfb_p50_ms']:.2f}ms")


def run_one(
    s: Settings, result: ServerResult, argv: Sequence[str], port: int, env: dict[str, str], logs: Path
) -> None:
    server = Server(result.name, argv, port, logs / f"{result.name.replace(' ', '-')}.log", env)
    try:
        bench_server(s, server, result)
    except Exception as exc:  # one broken server must not cost the rest of the table
        result.error = str(exc).strip()
        log(f"{result.name}: FAILED: {result.error}")
    finally:
        server.stop()


def tollgate_argv(cmd: Sequence[str], config: Path, port: int, workers: int) -> list[str]:
    argv = [*cmd, "serve", "--config", str(config), "--port", str(port)]
    return [*argv, "--workers", str(workers)] if workers > 1 else argv


def litellm_argv(venv: Path, config: Path, port: int, workers: int) -> list[str]:
    return [
        str(venv / "bin" / "litellm"),
        "--config",
        str(config),
        "--port",
        str(port),
        "--num_workers",
        str(workers),
    ]


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "AWS_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def tollgate_env(default_cmd: bool) -> dict[str, str]:
    env = base_env()
    if default_cmd:
        # `python -m tollgate` straight from the work tree, installed or not.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    return env


def litellm_env() -> dict[str, str]:
    env = base_env()
    # Use the bundled price map instead of downloading it; log as LiteLLM recommends for production.
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["LITELLM_LOG"] = "ERROR"
    env.pop("DATABASE_URL", None)
    return env


# ---------------------------------------------------------------------------------------------
# report


def fmt(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def cell_of(results: list[ServerResult], name: str, mode: str, conc: int) -> Cell | None:
    for r in results:
        if r.name == name:
            return next((c for c in r.cells if c.mode == mode and c.conc == conc), None)
    return None


def render(results: list[ServerResult], s: Settings, meta: dict[str, str]) -> str:
    lines = ["# tollgate vs LiteLLM proxy — `make bench`", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    lines += [
        "",
        "| server | mode | conc | rps | p50 ms | p99 ms | CPU ms/req | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.error and not r.cells:
            lines.append(f"| {r.name} | — | — | failed | | | | |")
            continue
        for c in r.cells:
            lines.append(
                f"| {c.server} | {c.mode} | {c.conc} | {c.rps:.0f} | {fmt(c.p50_ms)} | {fmt(c.p99_ms)} | "
                f"{fmt(c.cpu_ms_per_req, 3)} | {c.errors} |"
            )
    lines += [
        "",
        "## Summary",
        "",
        "| server | cold start s (first 200 / all idle) | idle RSS MB (total / per worker) | "
        "processes | best rps json / sse | added p50 c=1 json ms | stream TTFB p50 ms | added TTFB ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    upstream = next((r for r in results if r.kind == "upstream"), None)
    up_cell = cell_of(results, upstream.name, "json", 1) if upstream else None
    up_ttfb = upstream.ttfb.get("ttfb_p50_ms") if upstream else None
    for r in results:
        if r.error and not r.cells:
            continue
        c1 = cell_of(results, r.name, "json", 1)
        gateway = r.kind != "upstream"
        added = None
        if gateway and c1 and up_cell and c1.p50_ms is not None and up_cell.p50_ms is not None:
            added = c1.p50_ms - up_cell.p50_ms
        ttfb = r.ttfb.get("ttfb_p50_ms")
        added_ttfb = ttfb - up_ttfb if gateway and ttfb is not None and up_ttfb is not None else None
        rss = f"{fmt(r.rss_idle_mb, 0)} / {fmt(r.rss_idle_mb / r.workers if r.rss_idle_mb else None, 0)}"
        best = " / ".join(
            fmt(max((c.rps for c in r.cells if c.mode == mode), default=None), 0) for mode in ("json", "sse")
        )
        lines.append(
            f"| {r.name} | {fmt(r.cold_start_s)} / {fmt(r.settled_s)} | {rss} | {r.processes} | {best} | "
            f"{fmt(added)} | {fmt(ttfb)} | {fmt(added_ttfb)} |"
        )
    lines += ratio_lines(results, s)
    failed = [r for r in results if r.error]
    if failed:
        lines += ["", "## Failures", ""]
        for r in failed:
            lines += [f"- **{r.name}**:", "", "```", r.error or "", "```"]
    lines += [
        "",
        "Notes: CPU ms/req = utime+stime of the server's whole process tree (from /proc) during the "
        "wrk run ÷ completed requests; for the gateways it excludes the upstream. wrk, the upstream and the "
        "server share the same cores, so absolute rps is box-bound; compare rows, not machines. Idle RSS is "
        "measured after warm-up and includes any supervisor process. TTFB: sequential streaming requests on "
        "fresh connections until the first `data:` byte.",
        "",
    ]
    return "\n".join(lines)


def ratio_lines(results: list[ServerResult], s: Settings) -> list[str]:
    out = [
        "",
        "## tollgate ÷ LiteLLM",
        "",
        "| workers | mode | conc | rps tollgate ÷ LiteLLM (higher = faster) "
        "| CPU/req LiteLLM ÷ tollgate (higher = cheaper) |",
        "|---:|---|---:|---:|---:|",
    ]
    rows = 0
    for r in results:
        if r.kind != "tollgate":
            continue
        other = next((x for x in results if x.kind == "litellm" and x.workers == r.workers), None)
        if other is None:
            continue
        for mode in s.modes:
            for conc in s.concurrency:
                a = cell_of(results, r.name, mode, conc)
                b = cell_of(results, other.name, mode, conc)
                if not a or not b:
                    continue
                rps = f"{a.rps / b.rps:.1f}×" if b.rps else "—"
                cpu = (
                    f"{b.cpu_ms_per_req / a.cpu_ms_per_req:.1f}×"
                    if a.cpu_ms_per_req and b.cpu_ms_per_req
                    else "—"
                )
                out.append(f"| {r.workers} | {mode} | {conc} | {rps} | {cpu} |")
                rows += 1
    return out if rows else [*out[:3], "(no tollgate/LiteLLM pair measured)"]


# ---------------------------------------------------------------------------------------------
# profile


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


def upstream_argv(port: int, workers: int) -> list[str]:
    return [sys.executable, str(BENCH / "canned_upstream.py"), "--port", str(port), "--workers", str(workers)]


# ---------------------------------------------------------------------------------------------
# main


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
    ap.add_argument("--profile", action="store_true", help="record a py-spy flame graph instead of the table")
    ap.add_argument("--profile-target", choices=("tollgate", "litellm"), default="tollgate")
    ap.add_argument("--profile-mode", choices=("json", "sse"), default="json")
    ap.add_argument("--profile-seconds", type=float, default=10.0)
    ap.add_argument("--profile-conc", type=int, default=16)
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
        results.append(up)
        try:
            bench_server(s, upstream, up)
        except Exception as exc:
            up.error = str(exc)
            raise SystemExit(f"the canned upstream does not work: {exc}") from exc
        config = tmp / "config.yaml"
        config.write_text(CONFIG_TEMPLATE.format(port=up_port, key=MASTER_KEY))
        for w in workers:
            if args.skip_tollgate:
                break
            r = ServerResult(f"tollgate {w}w", "tollgate", w)
            results.append(r)
            port = free_port()
            run_one(s, r, tollgate_argv(cmd, config, port, w), port, tollgate_env(default_cmd), tmp)
        for w in workers:
            if litellm_venv is None:
                break
            r = ServerResult(f"litellm {w}w", "litellm", w)
            results.append(r)
            port = free_port()
            run_one(s, r, litellm_argv(litellm_venv, config, port, w), port, litellm_env(), tmp)
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
    report = render(results, s, meta)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    args.out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "results": [asdict(r) for r in results]}, indent=2)
    )
    log(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    sys.exit(main())
