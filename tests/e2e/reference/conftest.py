"""Fixtures for the reference-document tests: the users' configs (``tests/fixtures/reference/``,
copied verbatim from the documents and examples they come from) served by a real ``tollgate
serve`` on loopback, on a fresh SQLite file or a fresh PostgreSQL database.

The only change made to a document's config is where its upstreams are: ``on_loopback`` points
every Bedrock, Anthropic and OpenAI deployment's ``api_base`` at the fake upstream, and the
upstream credentials come from the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` —
the test key the fake verifies SigV4 signatures with — and the API keys the configs reference as
``os.environ/...``), as they would in the users' deployments.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.e2e.admin_env import database
from tests.e2e.servers import free_port, process
from tollgate.fakes.sigv4 import TEST_ACCESS_KEY, TEST_SECRET_KEY

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# The documents' own files; the example files they share with other tests live once, in
# tests/fixtures/examples (tier file, CSV, usage plan) and tests/fixtures/config (two configs).
_SHELVES = (FIXTURES / "reference", FIXTURES / "examples", FIXTURES / "config")
SRC = str(Path(__file__).resolve().parents[3] / "src")
DATABASES = ["sqlite", "postgres"]
# The upstream credentials a deployment finds in its environment (never real ones).
UPSTREAM_ENV = {
    "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY,
    "AWS_REGION_NAME": "us-east-1",
    "OPENAI_API_KEY": "sk-openai-upstream-test",
    "ANTHROPIC_API_KEY": "sk-ant-upstream-test",
}


def fixture(name: str) -> Path:
    """The fixture file ``name``, from whichever of the shelves holds it."""
    for shelf in _SHELVES:
        if (shelf / name).is_file():
            return shelf / name
    raise FileNotFoundError(f"no fixture {name} in {', '.join(str(s) for s in _SHELVES)}")


def load(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load(fixture(name).read_text())
    assert isinstance(loaded, dict)
    return loaded


def on_loopback(config: Mapping[str, Any], upstream: str) -> dict[str, Any]:
    """The config with every provider deployment's and guardrail's ``api_base`` on the fake upstream."""
    adapted = copy.deepcopy(dict(config))
    for entry in adapted.get("model_list") or []:
        params = entry["litellm_params"]
        provider = params["model"].split("/", 1)[0]
        if provider in ("bedrock", "anthropic"):
            params["api_base"] = upstream
        elif provider == "openai":
            params["api_base"] = f"{upstream}/v1"
    for guardrail in adapted.get("guardrails") or []:  # Bedrock's ApplyGuardrail, served by the fake
        guardrail["litellm_params"]["api_base"] = upstream
    return adapted


def tollgate(args: Sequence[str], env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m tollgate <args>`` as a user runs it."""
    full = {**os.environ, **(env or {}), "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "tollgate", *args], capture_output=True, text=True, env=full, timeout=120
    )


@dataclass(frozen=True)
class Served:
    url: str
    log: Path  # the gateway's stdout and stderr
    env: Mapping[str, str]  # what it was started with (DATABASE_URL included)
    config_path: Path


@contextmanager
def _process(args: Sequence[str], ready: str, env: Mapping[str, str]) -> Iterator[Path]:
    with process(args, ready, env) as log:
        try:
            yield log
        finally:
            log.unlink(missing_ok=True)


@contextmanager
def served(
    config: Mapping[str, Any],
    kind: str,
    env: Mapping[str, str] | None = None,
    before: Callable[[Path, Mapping[str, str]], None] | None = None,
) -> Iterator[Served]:
    """``tollgate serve`` on ``config`` over a fresh database of ``kind``. The database is given
    as ``DATABASE_URL`` (the documents' configs say ``database_url: os.environ/DATABASE_URL``).
    ``before(config_path, env)`` runs before the gateway starts (the CLI prepares the database as
    ``serve`` does; ``serve`` creates or upgrades the schema itself, on SQLite and PostgreSQL)."""
    with database(kind) as db_url:
        full_env = {**UPSTREAM_ENV, **(env or {}), "DATABASE_URL": db_url}
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
            yaml.safe_dump(dict(config), handle)
        path = Path(handle.name)
        try:
            if before is not None:
                before(path, full_env)
            with ExitStack() as stack:
                for attempt in range(3):
                    port = free_port()
                    args = ["serve", "--config", str(path), "--host", "127.0.0.1", "--port", str(port)]
                    try:
                        log = stack.enter_context(
                            _process(args, f"http://127.0.0.1:{port}/health/liveliness", full_env)
                        )
                        break
                    except RuntimeError as exc:  # another suite took the port between probe and bind
                        if attempt == 2 or "address already in use" not in str(exc).lower():
                            raise
                yield Served(f"http://127.0.0.1:{port}", log, full_env, path)
        finally:
            path.unlink(missing_ok=True)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def chat_body(model: str, text: str = "hello") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}]}


def post(url: str, key: str, body: Any) -> httpx.Response:
    return httpx.post(url, headers=bearer(key), json=body, timeout=30)
