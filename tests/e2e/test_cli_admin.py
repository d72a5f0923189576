"""The admin CLI as a user runs it (``python -m tollgate onboard|keys …``) on a fresh SQLite file; the
keys it prints are then used against a real ``tollgate serve`` on the same database."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.e2e.admin_env import SRC, gateways, run_tollgate, write_config
from tests.polling import wait_until

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
MASTER = "sk-cli-master"
TIER_MODELS = ("model-cheap", "model-balanced", "model-reasoning")


def _config(tmp_path: Path) -> dict[str, Any]:
    return {
        "model_list": [{"model_name": m, "litellm_params": {"model": f"fake/{m}"}} for m in TIER_MODELS],
        "general_settings": {"master_key": MASTER, "database_url": f"sqlite:///{tmp_path / 'cli.db'}"},
    }


def _run(*args: str) -> tuple[list[dict[str, Any]], str]:
    result = run_tollgate(args)
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()], result.stderr


def _chat(url: str, key: str, model: str) -> int:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{url}/v1/chat/completions", json=body, headers=headers, timeout=10).status_code


def test_onboard_is_idempotent_and_its_keys_work(tmp_path: Path) -> None:
    config = _config(tmp_path)
    path = write_config(config)
    onboard = ("onboard", "--tiers", str(EXAMPLES / "nova-tiers.yaml"),
               "--users", str(EXAMPLES / "users_to_onboard.csv"), "--config", str(path))
    try:
        created, log = _run(*onboard)
        assert [c["user_email"] for c in created] == [
            "user1@example.com", "user2@example.com", "user3@example.com"]
        assert [c["team_id"] for c in created] == ["tier-drafting", "tier-coding", "tier-architect"]
        assert all(c["key"].startswith("sk-") for c in created)
        assert len({c["key"] for c in created}) == 3
        assert "teams created: 3, users created: 3, skipped: 0" in log
        assert "\x1b" not in log and "\r" not in log  # stderr is a pipe: no terminal redraw codes

        again, log = _run(*onboard)
        assert again == []  # no key printed twice
        assert "teams created: 0, users created: 0, skipped: 3" in log
        assert all(c["key"] not in log for c in created)

        teams, _ = _run("teams", "list", "--config", str(path))
        assert sorted(t["team_id"] for t in teams) == ["tier-architect", "tier-coding", "tier-drafting"]
        users, _ = _run("users", "list", "--config", str(path))
        assert sorted(u["user_email"] for u in users) == [
            "user1@example.com", "user2@example.com", "user3@example.com"]

        with gateways(config, 1) as (url,):
            drafting, coding, _architect = (c["key"] for c in created)
            assert _chat(url, drafting, "model-cheap") == 200
            assert _chat(url, drafting, "model-reasoning") == 403  # the tier's team allows model-cheap
            assert _chat(url, coding, "model-balanced") == 200
    finally:
        path.unlink()


def test_onboard_progress_is_drawn_on_a_terminal_only(tmp_path: Path) -> None:
    path = write_config(_config(tmp_path))
    controller, terminal = pty.openpty()
    try:
        env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
        with subprocess.Popen(
            [sys.executable, "-m", "tollgate", "onboard", "--tiers", str(EXAMPLES / "nova-tiers.yaml"),
             "--users", str(EXAMPLES / "users_to_onboard.csv"), "--config", str(path)],
            stdout=subprocess.PIPE, stderr=terminal, env=env,
        ) as proc:
            os.close(terminal)
            drawn = _read_all(controller)
            assert proc.wait(60) == 0
    finally:
        os.close(controller)
        path.unlink()
    assert "\r[3/3] user3@example.com\x1b[K" in drawn
    assert "teams created: 3, users created: 3, skipped: 0" in drawn


def _read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other side of the terminal closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    path = write_config(_config(tmp_path))
    try:
        (created,), _ = _run("keys", "create", "--alias", "cli-key", "--models", "model-cheap",
                             "--config", str(path))
        key = created["key"]
        assert key.startswith("sk-") and created["key_name"] == f"sk-...{key[-4:]}"
        assert created["models"] == ["model-cheap"]

        listed, _ = _run("keys", "list", "--config", str(path))
        assert [(k["token"], k["key_alias"]) for k in listed] == [(created["token"], "cli-key")]
        assert key not in orjson.dumps(listed).decode()

        (revoked,), _ = _run("keys", "revoke", key, "--config", str(path))
        assert revoked == {"deleted_keys": [key]}
        assert _run("keys", "list", "--config", str(path))[0] == []

        missing = run_tollgate(["keys", "revoke", key, "--config", str(path)])
        assert missing.returncode == 1 and "not found" in missing.stderr
    finally:
        path.unlink()


def test_cli_revoke_reaches_a_running_server_at_once_and_is_audited(tmp_path: Path) -> None:
    """Issue 12: a CLI write is published on Redis like an API write (the server drops its cached
    principal within a second, not after the 60 s cache TTL) and lands in the audit log."""
    import os
    import subprocess
    import sys

    from tests.e2e.admin_env import SRC, redis_server

    with redis_server() as redis_url:
        config = _config(tmp_path)
        path = write_config(config)
        env = {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": SRC}
        headers = {"Authorization": f"Bearer {MASTER}"}
        try:
            assert run_tollgate(["migrate", "--config", str(path)]).returncode == 0
            with gateways(config, 1, env={"REDIS_URL": redis_url}) as (url,):
                key = httpx.post(f"{url}/key/generate", json={}, headers=headers).json()["key"]
                assert _chat(url, key, "model-cheap") == 200  # its principal is now cached
                revoke = subprocess.run(
                    [sys.executable, "-m", "tollgate", "keys", "revoke", key, "--config", str(path)],
                    capture_output=True, text=True, env=env, timeout=60,
                )
                assert revoke.returncode == 0, revoke.stderr
                # Redis pub/sub tells the server at once; the bound only limits a failure's wait.
                wait_until(lambda: _chat(url, key, "model-cheap") == 401, timeout=10,
                           what="the server refusing the key the CLI revoked")
                audit = httpx.get(f"{url}/audit/logs", params={"action": "/key/delete"}, headers=headers)
                (entry,) = audit.json()["audit_logs"]
                assert entry["actor"]["subject"].startswith("cli:") and key not in audit.text
        finally:
            path.unlink()
