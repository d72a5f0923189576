"""Starting and stopping the processes under test: the canned upstream, tollgate, LiteLLM (from
the throwaway bench venv), each in its own process group, plus their argv and environments."""

from __future__ import annotations

import contextlib
import http.client
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from common import BENCH, BENCH_VENV, LIVENESS, MASTER_KEY, REPO, STATE, log
from procstat import process_tree


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


def http_status(
    port: int, method: str, path: str, timeout: float, body: bytes | None = None, key: str = MASTER_KEY
) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


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


def upstream_argv(port: int, workers: int) -> list[str]:
    return [sys.executable, str(BENCH / "canned_upstream.py"), "--port", str(port), "--workers", str(workers)]


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
