"""Start-up as an operator sees it, with real ``tollgate`` processes and a real PostgreSQL:
``serve`` creates or upgrades the schema itself (replicas starting together are safe),
``DISABLE_SCHEMA_UPDATE`` refuses instead, ``migrate`` says what it did to which database, an
unusable database is one line and exit code 2, and every setting not enforced is reported."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.e2e.admin_env import write_config
from tests.e2e.servers import free_port, replicas
from tests.services import postgres_database, require_redis
from tests.store.older_schema import upgrade_to
from tollgate.store.migrations import HEAD
from tollgate.store.schema import read_revision

MASTER = "sk-startup-master"
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _config(database_url: str, **general: Any) -> dict[str, Any]:
    return {
        # Priced, so the start has nothing to warn about and a failure is the only line.
        "model_list": [{"model_name": "local-fake", "litellm_params": {"model": "fake/local"},
                        "model_info": {"input_cost_per_token": "0.000001"}}],
        "general_settings": {"master_key": MASTER, "database_url": database_url, **general},
    }


def _tollgate(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DISABLE_SCHEMA_UPDATE")}
    full = {**base, **(env or {}), "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-m", "tollgate", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        timeout=60,
    )


def _one_line_exit_2(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_replicas_starting_together_create_an_empty_postgres_schema_once() -> None:
    with postgres_database() as db, replicas(_config(db), 2) as started:
        logs = [log.read_text() for _, log in started]
        assert sum("created the schema" in text for text in logs) == 1, logs
        assert sum("already at revision" in text for text in logs) == 1, logs
        assert asyncio.run(read_revision(db)) == HEAD
        (first, _), (second, _) = started
        auth = {"Authorization": f"Bearer {MASTER}"}
        made = httpx.post(f"{first}/key/generate", json={"models": ["local-fake"]}, headers=auth, timeout=30)
        assert made.status_code == 200, made.text
        body = {"model": "local-fake", "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(
            f"{second}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {made.json()['key']}"},
        )
        assert answer.status_code == 200, answer.text


def test_serve_upgrades_an_older_schema() -> None:
    with postgres_database() as db:
        asyncio.run(upgrade_to(db, "0001"))
        with replicas(_config(db), 1) as [(_, log)]:
            assert f"upgraded the schema of {db} from revision 0001 to {HEAD}" in log.read_text()
        assert asyncio.run(read_revision(db)) == HEAD


@pytest.mark.parametrize("switch", ["env", "config"])
def test_schema_updates_disabled_refuse_an_older_schema_and_name_migrate(switch: str) -> None:
    with postgres_database() as db:
        asyncio.run(upgrade_to(db, "0001"))
        general = {"disable_prisma_schema_update": True} if switch == "config" else {}
        path = write_config(_config(db, **general))
        try:
            env = {"DISABLE_SCHEMA_UPDATE": "true"} if switch == "env" else {}
            result = _tollgate("serve", "--config", str(path), "--port", str(free_port()), env=env)
        finally:
            path.unlink()
        _one_line_exit_2(
            result, "at schema revision 0001", f"needs revision {HEAD}", "run `tollgate migrate`"
        )
        assert asyncio.run(read_revision(db)) == "0001"


def test_migrate_uses_database_url_and_says_what_it_did(tmp_path: Path) -> None:
    with postgres_database() as db:
        with_password = db.replace("postgres@", "postgres:s3cret@")  # the server trusts loopback
        masked = db.replace("postgres@", "postgres:***@")
        first = _tollgate("migrate", env={"DATABASE_URL": with_password}, cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        assert first.stdout == f"created the schema (revision {HEAD}) in {masked}\n"
        again = _tollgate("migrate", env={"DATABASE_URL": with_password}, cwd=tmp_path)
        assert again.stdout == f"the schema of {masked} is already at revision {HEAD}; nothing to do\n"
        assert "s3cret" not in first.stdout + first.stderr + again.stdout + again.stderr
        assert list(tmp_path.iterdir()) == []  # no SQLite file appeared in the working directory


UNUSABLE = {
    "refused": (
        "postgresql://postgres:s3cret@127.0.0.1:1/tollgate",
        "postgres:***@127.0.0.1:1/tollgate: connection refused",
    ),
    "no-database": (
        "postgresql://postgres@127.0.0.1:5432/tollgate_missing_db",
        'database "tollgate_missing_db" does not exist',
    ),
    "no-role": (
        "postgresql://tollgate_no_role:pw@127.0.0.1:5432/postgres",
        'role "tollgate_no_role" does not exist',
    ),
}
COMMANDS: dict[str, Callable[[str], list[str]]] = {
    "serve": lambda config: ["serve", "--config", config, "--host", "127.0.0.1", "--port", str(free_port())],
    "migrate": lambda config: ["migrate", "--config", config],
    "check-config": lambda config: ["check-config", config, "--check-connections"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(UNUSABLE))
def test_an_unusable_database_is_one_line_and_exit_2(case: str, command: str) -> None:
    url, reason = UNUSABLE[case]
    if case != "refused":
        with postgres_database():  # the server must be there to refuse the login
            pass
    path = write_config(_config(url))
    try:
        result = _tollgate(*COMMANDS[command](str(path)))
    finally:
        path.unlink()
    line = _one_line_exit_2(result, "tollgate: cannot use the database postgresql://", reason)
    assert "s3cret" not in line


def test_check_connections_reports_the_database_and_redis() -> None:
    require_redis()
    with postgres_database() as db:
        config = _config(db)
        config["router_settings"] = {"redis_url": "redis://127.0.0.1:6379/0"}
        path = write_config(config)
        try:
            result = _tollgate("check-config", str(path), "--check-connections")
            config["router_settings"] = {"redis_url": "redis://:pw@127.0.0.1:1/0"}
            path.write_text(yaml.safe_dump(config), encoding="utf-8")
            no_redis = _tollgate("check-config", str(path), "--check-connections")
        finally:
            path.unlink()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        f"database {db}: reachable, empty: `tollgate serve` or `tollgate migrate` creates the schema",
        "redis redis://127.0.0.1:6379/0: reachable",
    ]
    _one_line_exit_2(no_redis, "tollgate: cannot reach Redis at redis://:***@127.0.0.1:1/0")


def test_serve_reports_every_setting_it_does_not_enforce() -> None:
    config = _config("memory")
    config["mcp_servers"] = {"search": {"url": "http://127.0.0.1:9/mcp"}}
    config["litellm_settings"] = {"modify_params": True, "success_callback": ["langsmith"]}
    config["general_settings"]["allowed_ips"] = ["10.0.0.0/8"]
    with replicas(config, 1) as [(_, log)]:
        text = log.read_text()
    for path in (
        "'mcp_servers'",
        "'litellm_settings.modify_params'",
        "'litellm_settings.success_callback[0]' = 'langsmith'",
        "'general_settings.allowed_ips'",
    ):
        assert text.count(f"config: {path} is accepted, not enforced") == 1, text
