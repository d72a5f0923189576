"""The command line's start-up checks: ``check-config``, ``serve`` refusing bad configs, ``version``.

Runs ``python -m tollgate`` as a subprocess so exit codes and stderr are exactly what an operator
sees (no traceback, one ``tollgate: config error:`` line, exit 2).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tollgate import __version__

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "config"
EXAMPLE_ENV = {
    "LITELLM_ADMIN_KEY": "sk-admin",
    "DATABASE_URL": "memory",
    "OPENAI_API_KEY": "sk-openai",
    "ANTHROPIC_API_KEY": "sk-ant",
    "LITELLM_MASTER_KEY": "sk-master",
    "REDIS_HOST": "127.0.0.1",
    "REDIS_PORT": "6379",
    "REDIS_PASSWORD": "pw",
    # The examples' Bedrock deployments use the default AWS chain (a task role in production);
    # without credentials check-config would rightly warn about each of them.
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "example-secret",
}


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in EXAMPLE_ENV and not k.startswith("TOLLGATE")}
    base["PYTHONPATH"] = str(ROOT / "src")
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "tollgate", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _assert_config_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tollgate: config error: ")
    assert fragment in lines[0]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_version() -> None:
    result = _run("version")
    assert result.returncode == 0
    assert result.stdout == f"tollgate {__version__}\n"
    assert result.stderr == ""


def test_check_config_document_processing() -> None:
    result = _run("check-config", str(FIXTURES / "document-processing.yaml"), env=EXAMPLE_ENV)
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout == "ok: 3 deployments in 3 model groups: claude-fallback, claude-fast, claude-primary\n"
    )
    [finding] = result.stderr.splitlines()
    expected = "'litellm_settings.callbacks' = 'callbacks.metrics_logger.MetricsLogger' is accepted"
    assert expected in finding


def test_check_config_multi_provider() -> None:
    result = _run("check-config", str(FIXTURES / "multi-provider.yaml"), env=EXAMPLE_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "ok: 7 deployments in 4 model groups: anthropic.claude-3-haiku-20240307-v1:0, "
        "claude-3-5-sonnet-20240620-v1:0, gpt-4o, titan-embed\n"
    )
    findings = [line.split("tollgate: ", 1)[1] for line in result.stderr.splitlines()]
    assert findings == [
        "config: 'model_list[0].litellm_params.weight' is accepted, not enforced "
        "(only simple-shuffle routing uses weights, not usage-based-routing-v2)",
        "config: 'model_list[1].litellm_params.weight' is accepted, not enforced "
        "(only simple-shuffle routing uses weights, not usage-based-routing-v2)",
    ]


def test_check_config_reports_unknown_keys_once(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "model_list:\n  - model_name: a\n    litellm_params: {model: fake/echo}\n"
        "    model_info: {input_cost_per_token: 0.000001}\n"
        "general_settings: {master_key: sk-1}\nrouter_settings:\n  num_retry: 3\nextra_section: {}\n",
        encoding="utf-8",
    )
    result = _run("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok: 1 deployments in 1 model groups: a\n"
    assert result.stderr.count("unknown key 'router_settings.num_retry' is ignored") == 1
    assert result.stderr.count("unknown key 'extra_section' is ignored") == 1
    assert len(result.stderr.splitlines()) == 2


def test_check_config_example_without_env_is_refused() -> None:
    result = _run("check-config", str(FIXTURES / "document-processing.yaml"))
    _assert_config_error(
        result, "general_settings.master_key: environment variable LITELLM_ADMIN_KEY is not set"
    )


BAD_CONFIGS: list[tuple[str, str | bytes, str]] = [
    ("num-retries", "router_settings:\n  num_retries: three\n", "router_settings.num_retries: "),
    (
        "max-parallel",
        "general_settings:\n  max_parallel_requests: x\n",
        "general_settings.max_parallel_requests: ",
    ),
    ("drop-params", "litellm_settings:\n  drop_params: maybe\n", "litellm_settings.drop_params: "),
    (
        "no-model-name",
        "model_list:\n  - litellm_params: {model: openai/x}\n",
        "model_list[0].model_name: field required",
    ),
    (
        "params-not-mapping",
        "model_list:\n  - model_name: a\n    litellm_params: openai/x\n",
        "model_list[0].litellm_params: input should be a valid dictionary",
    ),
    ("model-list-not-list", "model_list: {model_name: a}\n", "model_list: must be a list of deployments"),
    ("top-level-list", "- model_name: a\n", "config.yaml: the top level must be a mapping of sections"),
    (
        "unsupported-provider",
        "model_list:\n  - model_name: a\n    litellm_params: {model: vertex_ai/gemini-pro}\n",
        "model_list[0].litellm_params.model: provider 'vertex_ai'",
    ),
    (
        "missing-env",
        "general_settings:\n  master_key: os.environ/TOLLGATE_TEST_UNSET_VAR\n",
        "general_settings.master_key: environment variable TOLLGATE_TEST_UNSET_VAR is not set",
    ),
    (
        "yaml-syntax",
        "model_list:\n  - model_name: a\n   litellm_params: {model: openai/x}\n",
        "not valid YAML at line 3",
    ),
    ("not-utf8", b"model_list:\n\xff\xfe\n", "not UTF-8 text"),
]


@pytest.mark.parametrize(("text", "fragment"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_check_config_refuses_bad_config(tmp_path: Path, text: str | bytes, fragment: str) -> None:
    path = tmp_path / "config.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    _assert_config_error(_run("check-config", str(path)), fragment)


def test_check_config_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    _assert_config_error(
        _run("check-config", str(missing)), f"cannot read config file {missing}: No such file or directory"
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("router_settings:\n  num_retries: three\n", "router_settings.num_retries: "),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: nope/x}\n",
            "model_list[0].litellm_params.model: provider 'nope'",
        ),
    ],
)
def test_serve_refuses_bad_config_before_binding(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    port = _free_port()
    result = _run("serve", "--config", str(path), "--host", "127.0.0.1", "--port", str(port))
    _assert_config_error(result, fragment)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))  # still free: the server never started


def test_serve_refuses_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = _run("serve", "--config", str(missing), "--host", "127.0.0.1", "--port", str(_free_port()))
    _assert_config_error(result, f"cannot read config file {missing}")
