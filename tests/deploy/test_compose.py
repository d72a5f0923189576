"""deploy/docker-compose.yaml, validated by Docker Compose itself (``docker-compose config``
checks the file against the Compose specification and resolves variables, profiles and
``depends_on``; it needs no Docker engine), and held to what docs/deploy.md says of it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.deploy.artifacts import (
    DEPLOY,
    LITELLM_CMD,
    config_env_references,
    config_warnings,
    env_example,
    filled_env_example,
    final_stage,
    tool,
)
from tollgate.cli import parser, serve_defaults

COMPOSE = DEPLOY / "docker-compose.yaml"


def _project(tmp_path: Path, env: dict[str, str]) -> Path:
    """A copy of deploy/ with ``env`` as its .env (compose reads .env beside the file)."""
    project = tmp_path / "deploy"
    project.mkdir()
    for name in ("docker-compose.yaml", "config.yaml"):
        shutil.copy(DEPLOY / name, project / name)
    (project / ".env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return project


def _config(project: Path) -> subprocess.CompletedProcess[str]:
    # Only the .env file may supply variables, as on an operator's machine.
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}
    return subprocess.run(
        [tool("docker-compose"), "--project-directory", str(project), "-f", str(project / COMPOSE.name),
         "config", "--format", "json"],
        capture_output=True, text=True, env=clean, timeout=60,
    )


def _resolved(tmp_path: Path, **overrides: str) -> dict[str, Any]:
    result = _config(_project(tmp_path, {**filled_env_example(), **overrides}))
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def test_valid_with_the_fake_profile(tmp_path: Path) -> None:
    services = _resolved(tmp_path)["services"]
    assert set(services) == {"postgres", "redis", "gateway", "fake-upstream"}


def test_valid_without_the_fake_profile(tmp_path: Path) -> None:
    services = _resolved(tmp_path, COMPOSE_PROFILES="")["services"]
    assert "fake-upstream" not in services
    assert "gateway" in services


def test_example_env_as_shipped_refuses_to_start(tmp_path: Path) -> None:
    """No secret has a default: unfilled, compose stops with the variable's name."""
    result = _config(_project(tmp_path, env_example()))
    assert result.returncode != 0
    assert re.search(r"set (POSTGRES_PASSWORD|REDIS_PASSWORD|LITELLM_MASTER_KEY) in \.env", result.stderr)


def test_env_example_holds_names_not_values() -> None:
    example = env_example(commented=True)
    assert {k: v for k, v in example.items() if v} == {"COMPOSE_PROFILES": "fake"}
    for needed in ("LITELLM_MASTER_KEY", "DATABASE_URL", "POSTGRES_PASSWORD", "REDIS_PASSWORD",
                   "UI_USERNAME", "UI_PASSWORD", "AWS_REGION_NAME", "AWS_ACCESS_KEY_ID",
                   "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "TOLLGATE_GRACEFUL_TIMEOUT"):
        assert needed in example, needed


def test_every_variable_used_is_in_the_example() -> None:
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", COMPOSE.read_text()))
    used |= config_env_references((DEPLOY / "config.yaml").read_text())
    used -= {"TOLLGATE_IMAGE"}  # an optional override of the image name, documented in docs/deploy.md
    documented = set(env_example(commented=True))
    assert used <= documented, used - documented


def test_gateway_starts_after_its_dependencies_are_healthy(tmp_path: Path) -> None:
    services = _resolved(tmp_path)["services"]
    depends = services["gateway"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"
    assert depends["redis"]["condition"] == "service_healthy"
    assert depends["fake-upstream"]["required"] is False
    for name in ("postgres", "redis", "gateway", "fake-upstream"):
        assert services[name]["healthcheck"]["test"], name


def test_the_gateway_migrates_the_schema_itself(tmp_path: Path) -> None:
    """No separate migration step: ``serve`` upgrades the schema on start (under an advisory lock)."""
    services = _resolved(tmp_path)["services"]
    assert set(services["gateway"]["depends_on"]) == {"postgres", "redis", "fake-upstream"}
    assert "DISABLE_SCHEMA_UPDATE" not in services["gateway"]["environment"]


def test_gateway_runs_litellm_arguments_with_the_health_port(tmp_path: Path) -> None:
    gateway = _resolved(tmp_path)["services"]["gateway"]
    assert tuple(gateway["command"]) == LITELLM_CMD
    assert gateway.get("entrypoint") is None  # the image's: tollgate
    env = gateway["environment"]
    args = parser(env).parse_args(["serve", *gateway["command"]])
    assert args.workers == 2
    published = {int(p["target"]) for p in gateway["ports"]}
    assert {args.port, args.health_port} == published == {4000, 4001}
    assert gateway["healthcheck"]["test"] == ["CMD", "tollgate", "healthcheck"]
    assert env["DATABASE_URL"].startswith("postgresql://tollgate:dummy-postgres_password@postgres:5432/")
    assert env["REDIS_HOST"] == "redis"


def test_gateway_file_system_is_read_only_but_for_the_image_volumes(tmp_path: Path) -> None:
    gateway = _resolved(tmp_path)["services"]["gateway"]
    assert gateway["read_only"] is True
    writable = {v["target"] for v in gateway["volumes"] if not v.get("read_only")}
    writable |= set(gateway.get("tmpfs", []))
    assert set(final_stage().volumes) <= writable
    config_mount = next(v for v in gateway["volumes"] if v["target"] == "/app/config.yaml")
    assert config_mount["read_only"] is True


def test_stop_grace_period_covers_the_drain(tmp_path: Path) -> None:
    gateway = _resolved(tmp_path)["services"]["gateway"]
    grace = int(re.fullmatch(r"(\d+)s", gateway["stop_grace_period"]).group(1))  # type: ignore[union-attr]
    drain = serve_defaults(gateway["environment"]).graceful_timeout
    assert grace >= drain + 5


def test_fake_upstream_command_parses(tmp_path: Path) -> None:
    command = _resolved(tmp_path)["services"]["fake-upstream"]["command"]
    assert parser({}).parse_args(command).command == "fake-upstream"


def test_compose_config_loads_without_warnings(tmp_path: Path) -> None:
    """With the environment compose gives the gateway container."""
    env = _resolved(tmp_path)["services"]["gateway"]["environment"]
    deployments, warnings = config_warnings(DEPLOY / "config.yaml", env)
    assert deployments == 2
    assert warnings == []
