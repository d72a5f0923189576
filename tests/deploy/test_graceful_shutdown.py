"""SIGTERM in a container: the gateway stops accepting, lets in-flight requests finish (up to
``TOLLGATE_GRACEFUL_TIMEOUT``, default 20 s), then flushes the spend log before it exits; past
the timeout it cancels what is left and still exits with the rows written. Runs the real
``tollgate serve`` with two workers, as the image does, in front of a slow-streaming fake upstream.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from tests.e2e.servers import fake_upstream, free_port
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = "sk-graceful"


@contextmanager
def _gateway(
    tmp_path: Path, upstream: str, graceful: int | None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    database = tmp_path / "tollgate.db"
    config = {
        "model_list": [
            {
                "model_name": "slow",
                "litellm_params": {"model": "openai/slow", "api_base": f"{upstream}/v1", "api_key": "k"},
            }
        ],
        # A long batch interval: a row in the table after the stop was written by the stop's flush.
        "general_settings": {
            "master_key": MASTER_KEY,
            "database_url": f"sqlite:///{database}",
            "proxy_batch_write_at": 600,
        },
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PORT": str(port), "TMPDIR": str(tmp_path)}
    env.pop("TOLLGATE_GRACEFUL_TIMEOUT", None)
    if graceful is not None:
        env["TOLLGATE_GRACEFUL_TIMEOUT"] = str(graceful)
    log = (tmp_path / "gateway.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tollgate", "--config", str(tmp_path / "config.yaml"), "--num_workers", "2"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert process.poll() is None, (tmp_path / "gateway.log").read_text()
            try:
                return httpx.get(f"{base}/health/readiness", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout=30, what=f"{base}/health/readiness")
        yield process, base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _spend_rows(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "tollgate.db") as conn:
        return int(conn.execute("SELECT count(*) FROM tollgate_spend_logs").fetchone()[0])


def _stream(base: str) -> Iterator[str]:
    """The text of each chunk of a streamed chat; the first (the role) arrives at once."""
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=MASTER_KEY, max_retries=0, timeout=60)
    stream = client.chat.completions.create(
        model="slow", stream=True, messages=[{"role": "user", "content": "tell me a long story"}]
    )
    for chunk in stream:
        yield (chunk.choices[0].delta.content or "") if chunk.choices else ""


def test_in_flight_stream_finishes_and_is_logged(tmp_path: Path) -> None:
    with (
        fake_upstream("--chunk-delay", "0.1") as upstream,
        _gateway(tmp_path, upstream, None) as (process, base),
    ):
        chunks = _stream(base)
        next(chunks)  # the request is in flight inside a worker
        process.send_signal(signal.SIGTERM)
        text = "".join(chunks)  # streamed to the end after the signal
        assert text
        assert process.wait(timeout=60) == 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/health/liveliness", timeout=1)
    assert _spend_rows(tmp_path) == 1


def test_graceful_timeout_cuts_what_is_left_and_still_flushes(tmp_path: Path) -> None:
    with (
        fake_upstream("--chunk-delay", "30") as upstream,
        _gateway(tmp_path, upstream, 1) as (process, base),
    ):
        chunks = _stream(base)
        next(chunks)
        process.send_signal(signal.SIGTERM)
        with pytest.raises((openai.APIError, httpx.HTTPError)):
            list(chunks)
        assert process.wait(timeout=30) == 0  # long before the upstream's 30 s chunk
    assert _spend_rows(tmp_path) == 1  # the cut stream is accounted in its finally
