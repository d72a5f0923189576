"""Start real ``tollgate`` processes on loopback for end-to-end tests, and stop them reliably."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server not ready after {timeout}s:\n{log.read_text()[-4000:]}")


@contextmanager
def process(args: Sequence[str], ready_url: str, env: Mapping[str, str] | None = None) -> Iterator[Path]:
    """Run ``python -m tollgate <args>`` until the block ends; yields the log file's path."""
    log = Path(tempfile.mkstemp(prefix="tollgate-", suffix=".log")[1])
    full_env = {**os.environ, **(env or {})}
    src = str(Path(__file__).resolve().parents[2] / "src")
    full_env["PYTHONPATH"] = src + os.pathsep + full_env.get("PYTHONPATH", "")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tollgate", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            start_new_session=True,
        )
    try:
        _wait_ready(proc, ready_url, log)
        yield log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextmanager
def fake_upstream(*extra: str) -> Iterator[str]:
    port = free_port()
    with process(["fake-upstream", "--port", str(port), *extra], f"http://127.0.0.1:{port}/v1/models"):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def gateway(config: Mapping[str, Any], *extra: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(dict(config), handle)
    try:
        with process(
            ["serve", "--config", handle.name, "--host", "127.0.0.1", "--port", str(port), *extra],
            f"http://127.0.0.1:{port}/health/liveliness",
            env,
        ):
            yield f"http://127.0.0.1:{port}"
    finally:
        os.unlink(handle.name)
