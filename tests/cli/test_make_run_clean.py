"""`make run` leaves the checkout clean (issue 12): everything the embedded default writes in its
working directory (the SQLite database, its journal, spill and metrics folders) is ignored by the
repository's .gitignore. The test runs `tollgate serve` with no config, as `make run` does, in a new
git work tree holding only that .gitignore, serves a chat completion, stops it, and asks git."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.servers import free_port
from tests.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/liveliness", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_embedded_default_leaves_only_ignored_files(tmp_path: Path) -> None:
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    for name in ("DATABASE_URL", "REDIS_HOST", "REDIS_URL", "LITELLM_MASTER_KEY"):
        env.pop(name, None)
    log = (tmp_path.parent / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "tollgate", "serve", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url) or server.poll() is not None, timeout=30, what="make run's server")
        assert server.poll() is None, (tmp_path.parent / "serve.log").read_text()
        models = httpx.get(f"{url}/v1/models", headers={"Authorization": "Bearer sk-1234"}, timeout=10).json()
        model = models["data"][0]["id"]
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(f"{url}/v1/chat/completions", json=body,
                            headers={"Authorization": "Bearer sk-1234"}, timeout=10)
        assert answer.status_code == 200, answer.text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    written = [p.name for p in tmp_path.iterdir() if p.name not in (".git", ".gitignore")]
    assert written, "the embedded default wrote nothing: this test no longer checks anything"
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=tmp_path,
                            capture_output=True, text=True, check=True).stdout
    assert status.strip() == "?? .gitignore", f"files make run leaves behind: {status}"
