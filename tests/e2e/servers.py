"""Start real ``tollgate`` processes on loopback for end-to-end tests, and stop them reliably."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.polling import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 30.0) -> None:
    def answering() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            return httpx.get(url, timeout=1.0).status_code < 500
        except httpx.HTTPError:
            return False

    try:
        wait_until(answering, timeout=timeout, interval=0.05, what=f"{url} answering")
    except AssertionError:
        raise RuntimeError(f"server not ready after {timeout}s:\n{log.read_text()[-4000:]}") from None


@contextmanager
def process(
    args: Sequence[str], ready_url: str, env: Mapping[str, str | None] | None = None, cwd: Path | None = None
) -> Iterator[Path]:
    """Run ``python -m tollgate <args>`` until the block ends; yields the log file's path."""
    with _started(args, env, cwd) as (proc, log):
        _wait_ready(proc, ready_url, log)
        yield log


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def _on_free_port(start: Callable[[int], AbstractContextManager[Path]]) -> Iterator[int]:
    """Start a server on a free port, trying another port if something else took it between
    ``free_port`` and the server's bind (other suites run concurrently on this machine)."""
    for attempt in range(3):
        port = free_port()
        stack = ExitStack()
        try:
            stack.enter_context(start(port))
        except RuntimeError as exc:
            if attempt < 2 and "address already in use" in str(exc).lower():
                continue
            raise
        with stack:
            yield port
        return


@contextmanager
def fake_upstream(*extra: str) -> Iterator[str]:
    def start(port: int) -> AbstractContextManager[Path]:
        return process(["fake-upstream", "--port", str(port), *extra], f"http://127.0.0.1:{port}/v1/models")

    with _on_free_port(start) as port:
        yield f"http://127.0.0.1:{port}"


@contextmanager
def gateway(config: Mapping[str, Any], *extra: str, env: Mapping[str, str] | None = None) -> Iterator[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(dict(config), handle)

    def start(port: int) -> AbstractContextManager[Path]:
        args = ["serve", "--config", handle.name, "--host", "127.0.0.1", "--port", str(port), *extra]
        return process(args, f"http://127.0.0.1:{port}/health/liveliness", env)

    try:
        with _on_free_port(start) as port:
            yield f"http://127.0.0.1:{port}"
    finally:
        os.unlink(handle.name)


@contextmanager
def replicas(
    config: Mapping[str, Any], count: int, *extra: str, env: Mapping[str, str] | None = None
) -> Iterator[list[tuple[str, Path]]]:
    """``count`` ``tollgate serve`` processes on one config, started at the same moment (for
    start-up races); yields each one's base URL and log file once all answer."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(dict(config), handle)
    ports = [free_port() for _ in range(count)]
    serve = ["serve", "--config", handle.name, "--host", "127.0.0.1"]
    with ExitStack() as stack:
        started = [stack.enter_context(_started([*serve, "--port", str(p), *extra], env)) for p in ports]
        try:
            for port, (proc, log) in zip(ports, started, strict=True):
                _wait_ready(proc, f"http://127.0.0.1:{port}/health/liveliness", log)
            yield [(f"http://127.0.0.1:{port}", log) for port, (_, log) in zip(ports, started, strict=True)]
        finally:
            os.unlink(handle.name)


@contextmanager
def _started(
    args: Sequence[str], env: Mapping[str, str | None] | None, cwd: Path | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``python -m tollgate <args>`` started (not waited for), stopped at the end of the block.
    ``env`` overrides this process's environment; a ``None`` value removes the variable."""
    log = Path(tempfile.mkstemp(prefix="tollgate-", suffix=".log")[1])
    merged = {**os.environ, **(env or {})}
    full_env = {name: value for name, value in merged.items() if value is not None}
    src = str(Path(__file__).resolve().parents[2] / "src")
    full_env["PYTHONPATH"] = src + os.pathsep + full_env.get("PYTHONPATH", "")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tollgate", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    try:
        yield proc, log
    finally:
        _stop(proc)
