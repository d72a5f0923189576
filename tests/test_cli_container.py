"""How containers start tollgate: LiteLLM's image arguments and variables (``tollgate --config F
--num_workers 2 --run_gunicorn``, ``HOST``/``PORT``/``NUM_WORKERS``, ``SEPARATE_HEALTH_APP``),
the graceful-shutdown knob, and ``tollgate healthcheck`` (the image's HEALTHCHECK)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.servers import free_port
from tollgate.cli import _with_default_command, parser, serve_defaults
from tollgate.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _tollgate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("PORT", "HOST", "NUM_WORKERS")}
    base = {k: v for k, v in base.items() if not k.startswith(("SEPARATE_HEALTH", "TOLLGATE"))}
    return subprocess.run(
        [sys.executable, "-m", "tollgate", *args],
        env={**base, "PYTHONPATH": str(ROOT / "src"), **env},
        capture_output=True, text=True, timeout=60,
    )


def test_litellm_image_arguments_mean_serve() -> None:
    argv = _with_default_command(["--config", "/app/config.yaml", "--num_workers", "2", "--run_gunicorn"])
    args = parser({}).parse_args(argv)
    assert (args.command, args.config, args.workers) == ("serve", "/app/config.yaml", 2)
    assert args.run_gunicorn is True
    assert (args.host, args.port, args.health_port, args.graceful_timeout) == ("0.0.0.0", 4000, None, 20)
    assert parser({}).parse_args(_with_default_command(["--detailed_debug"])).detailed_debug is True


@pytest.mark.parametrize("argv", [["migrate"], ["--help"], ["-h"], []])
def test_other_command_lines_are_left_alone(argv: list[str]) -> None:
    assert _with_default_command(argv) == argv


def test_litellm_variables_set_the_defaults_and_flags_win() -> None:
    env = {"HOST": "127.0.0.1", "PORT": "8080", "NUM_WORKERS": "3", "SEPARATE_HEALTH_APP": "1",
           "TOLLGATE_GRACEFUL_TIMEOUT": "45"}
    args = parser(env).parse_args(["serve"])
    assert (args.host, args.port, args.workers, args.health_port, args.graceful_timeout) == (
        "127.0.0.1", 8080, 3, 4001, 45
    )
    args = parser(env).parse_args(["serve", "--port", "9000", "--health-port", "9001", "--workers", "1"])
    assert (args.port, args.health_port, args.workers) == (9000, 9001, 1)


def test_health_port_only_with_separate_health_app() -> None:
    assert serve_defaults({"SEPARATE_HEALTH_PORT": "8001"}).health_port is None
    assert serve_defaults({"SEPARATE_HEALTH_APP": "1", "SEPARATE_HEALTH_PORT": "8001"}).health_port == 8001
    assert serve_defaults({"SEPARATE_HEALTH_APP": "0"}).health_port is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "http"}, "PORT='http' is not a whole number"),
        ({"NUM_WORKERS": "0"}, "NUM_WORKERS=0 must be at least 1"),
        ({"SEPARATE_HEALTH_APP": "1", "SEPARATE_HEALTH_PORT": "x"}, "SEPARATE_HEALTH_PORT='x'"),
        ({"TOLLGATE_GRACEFUL_TIMEOUT": "-1"}, "TOLLGATE_GRACEFUL_TIMEOUT=-1 must be at least 0"),
    ],
)
def test_bad_variables_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        serve_defaults(env)


def test_bad_variable_is_one_line_and_exit_2() -> None:
    result = _tollgate("--config", "/app/config.yaml", env={"PORT": "http"})
    assert result.returncode == 2
    assert result.stderr == "tollgate: config error: environment variable PORT='http' is not a whole number\n"


def test_healthcheck_fails_when_nothing_answers() -> None:
    port = free_port()
    result = _tollgate("healthcheck", env={"PORT": str(port)})
    assert result.returncode == 1
    assert f"http://127.0.0.1:{port}/health/liveliness" in result.stderr
    health = free_port()
    result = _tollgate("healthcheck", env={"SEPARATE_HEALTH_APP": "1", "SEPARATE_HEALTH_PORT": str(health)})
    assert result.returncode == 1
    assert f"http://127.0.0.1:{health}/health/liveliness" in result.stderr
