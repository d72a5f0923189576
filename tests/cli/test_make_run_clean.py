"""`make run` leaves the checkout clean (issue 12): everything the embedded default writes in its
working directory (the SQLite database, its journal, spill and metrics folders) is ignored by the
repository's .gitignore. The test runs `tollgate serve` with no config, as `make run` does, in a new
git work tree holding only that .gitignore, serves a chat completion, stops it, and asks git."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx

from tests.e2e.servers import free_port, process

ROOT = Path(__file__).resolve().parents[2]
UNSET = {name: None for name in ("DATABASE_URL", "REDIS_HOST", "REDIS_URL", "LITELLM_MASTER_KEY")}


def test_the_embedded_default_leaves_only_ignored_files(tmp_path: Path) -> None:
    shutil.copy(ROOT / ".gitignore", tmp_path / ".gitignore")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with process(["serve", "--port", str(port)], f"{url}/health/liveliness", env=UNSET, cwd=tmp_path):
        headers = {"Authorization": "Bearer sk-1234"}
        models = httpx.get(f"{url}/v1/models", headers=headers, timeout=10).json()
        body = {"model": models["data"][0]["id"], "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
    written = [p.name for p in tmp_path.iterdir() if p.name not in (".git", ".gitignore")]
    assert written, "the embedded default wrote nothing: this test no longer checks anything"
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=tmp_path,
                            capture_output=True, text=True, check=True).stdout
    assert status.strip() == "?? .gitignore", f"files make run leaves behind: {status}"
