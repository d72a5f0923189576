"""Databases, Redis and config files for the admin end-to-end tests: a fresh SQLite file or a fresh
PostgreSQL database per run (the machine's server on 127.0.0.1:5432, user ``postgres``), a private
``redis-server`` on a free port, and ``python -m tollgate <command>`` runs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests import services
from tests.e2e.servers import _wait_ready, free_port
from tests.polling import wait_until
from tests.services import missing

SRC = str(Path(__file__).resolve().parents[2] / "src")


def run_tollgate(args: Sequence[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "tollgate", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def write_config(config: Mapping[str, Any]) -> Path:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(dict(config), handle)
    return Path(handle.name)


def postgres_database() -> AbstractContextManager[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards; yields its URL (``tests.services``)."""
    return services.postgres_database("tollgate_e2e")


@contextmanager
def sqlite_database() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="tollgate-db-")
    try:
        yield f"sqlite:///{directory}/tollgate.db"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def database(kind: str) -> Iterator[str]:
    with (postgres_database() if kind == "postgres" else sqlite_database()) as url:
        yield url


@contextmanager
def redis_server() -> Iterator[str]:
    """A private, non-persistent ``redis-server``; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        missing("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        import redis

        client = redis.Redis(port=port, socket_connect_timeout=0.2)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(answers, timeout=10, what="the private redis-server answering")
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def gateways(
    config: Mapping[str, Any], count: int, env: Mapping[str, str] | None = None
) -> Iterator[list[str]]:
    """``count`` replicas of ``tollgate serve`` on one config, started in parallel (start-up is
    mostly imports); yields their base URLs. Each creates or upgrades the database's schema on start."""
    path = write_config(config)
    pythonpath = SRC + os.pathsep + os.environ.get("PYTHONPATH", "")
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": pythonpath}
    started: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for _ in range(count):
            port = free_port()
            log = Path(tempfile.mkstemp(prefix="tollgate-", suffix=".log")[1])
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "tollgate", "serve", "--config", str(path),
                     "--host", "127.0.0.1", "--port", str(port)],
                    stdout=out, stderr=subprocess.STDOUT, env=full_env, start_new_session=True,
                )
            started.append((proc, f"http://127.0.0.1:{port}", log))
        for proc, url, log in started:
            _wait_ready(proc, f"{url}/health/liveliness", log)
        yield [url for _, url, _ in started]
    finally:
        for proc, _, _ in started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _, _ in started:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        path.unlink()
