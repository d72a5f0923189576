"""What serve and check-config say before serving: a master key that resolves to nothing refuses to
start; an open gateway, fallbacks and aliases naming no model group, and deployments without a
price are each reported on one line; DATABASE_CONNECTION_POOL_LIMIT reaches the config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.servers import free_port, process
from tollgate.cli.preflight import OPEN_GATEWAY, preflight
from tollgate.config import parse_config
from tollgate.errors import ConfigError

SRC = str(Path(__file__).resolve().parents[2] / "src")
PRICED = {"input_cost_per_token": "0.000001", "output_cost_per_token": "0.000002"}


def _deployment(name: str, model: str = "fake/echo", info: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"model_name": name, "litellm_params": {"model": model},
            "model_info": PRICED if info is None else info}


def _config(**sections: Any) -> dict[str, Any]:
    return {"model_list": [_deployment("a"), _deployment("b")],
            "general_settings": {"master_key": "sk-1"}, **sections}


def _tollgate(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("TOLLGATE", "LITELLM"))}
    full.update(env, PYTHONPATH=SRC, DATABASE_URL="memory")
    return subprocess.run([sys.executable, "-m", "tollgate", *args], capture_output=True, text=True,
                          env=full, timeout=60)


@pytest.mark.parametrize("value", ["", "   ", "\t"])
def test_a_master_key_set_but_empty_is_refused(value: str) -> None:
    raw = _config(general_settings={"master_key": "os.environ/LITELLM_ADMIN_KEY"})
    with pytest.raises(ConfigError) as refused:
        parse_config(raw, env={"LITELLM_ADMIN_KEY": value})
    assert refused.value.message.startswith(
        "general_settings.master_key: environment variable LITELLM_ADMIN_KEY is set but empty")


@pytest.mark.parametrize("value", ["", None])
def test_a_literal_empty_master_key_is_refused(value: str | None) -> None:
    with pytest.raises(ConfigError, match=r"general_settings\.master_key: it is empty"):
        parse_config(_config(general_settings={"master_key": value}), env={})


@pytest.mark.parametrize("command", ["serve", "check-config"])
def test_the_cli_refuses_an_empty_master_key_in_one_line(command: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(_config(general_settings={"master_key": "os.environ/LITELLM_ADMIN_KEY"})))
    args = ["serve", "--config", str(path), "--port", "1"] if command == "serve" else [command, str(path)]
    result = _tollgate(args, {"LITELLM_ADMIN_KEY": ""})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "tollgate: config error: general_settings.master_key: environment variable LITELLM_ADMIN_KEY is set "
        "but empty; set a key (leaving it empty would open the gateway and its admin API to anyone)"]


def test_no_master_key_at_all_is_an_open_gateway_said_up_front(tmp_path: Path) -> None:
    raw = _config()
    del raw["general_settings"]
    assert preflight(parse_config(raw, env={})) == [OPEN_GATEWAY]
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = _tollgate(["check-config", str(path)], {})
    assert result.returncode == 0, result.stderr
    [line] = result.stderr.splitlines()
    assert line.endswith("WARNING tollgate: " + OPEN_GATEWAY)
    assert preflight(parse_config(_config(), env={})) == []


def test_fallbacks_and_aliases_naming_no_model_group() -> None:
    config = parse_config(_config(
        router_settings={
            "fallbacks": [{"a": ["b", "nope"]}, {"ghost": ["a"]}, {"*": ["b"]}],
            "context_window_fallbacks": [{"a": ["too-small"]}],
            "content_policy_fallbacks": [{"a": ["alias-of-b"]}],
            "model_group_alias": {"alias-of-b": "b", "dangling": "y"},
        },
        litellm_settings={"default_fallbacks": ["missing"], "model_group_alias": {"old": {"model": "gone"}}},
    ), env={})
    assert preflight(config) == [
        "config: 'router_settings.fallbacks[0].a' names model group 'nope', which no deployment serves: "
        "that fallback is never taken",
        "config: 'router_settings.fallbacks[1]' names model group 'ghost', which no deployment serves: "
        "its fallbacks are never used",
        "config: 'router_settings.context_window_fallbacks[0].a' names model group 'too-small', which no "
        "deployment serves: that fallback is never taken",
        "config: 'litellm_settings.default_fallbacks[0]' names model group 'missing', which no deployment "
        "serves: that fallback is never taken",
        "config: 'litellm_settings.model_group_alias.old' points at model group 'gone', which no deployment "
        "serves: requests for 'old' get 404",
        "config: 'router_settings.model_group_alias.dangling' points at model group 'y', which no "
        "deployment serves: requests for 'dangling' get 404",
    ]


def test_a_wildcard_deployment_serves_fallback_names_and_db_models_are_mentioned() -> None:
    raw = _config(router_settings={"fallbacks": [{"a": ["anthropic/claude-x"]}, {"a": ["later"]}]},
                  general_settings={"master_key": "sk-1", "store_model_in_db": True})
    raw["model_list"].append(_deployment("anthropic/*", "anthropic/*"))
    [finding] = preflight(parse_config(raw, env={}))
    assert "'later'" in finding and finding.endswith("(unless a /model/new deployment adds it: "
                                                     "store_model_in_db is on)")


def test_deployments_without_a_price_are_named() -> None:
    raw = _config()
    raw["model_list"] += [
        _deployment("unpriced", "openai/some-private-model", info={}),
        _deployment("by-table", "bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0", info={}),
        _deployment("by-base-model", "openai/my-finetune", info={"base_model": "gpt-4o"}),
        _deployment("pattern", "openai/*", info={}),
    ]
    assert preflight(parse_config(raw, env={})) == [
        "config: deployment 'unpriced' (openai/some-private-model) has no known price: its calls would be "
        "recorded at $0 and count nothing against budgets; set model_info.input_cost_per_token and "
        "output_cost_per_token (or model_info.base_model to a priced model)"]


def test_serve_says_it_at_start(tmp_path: Path) -> None:
    raw = _config(router_settings={"fallbacks": [{"a": ["nope"]}]})
    raw["model_list"].append(_deployment("free", info={}))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    port = free_port()
    args = ["serve", "--config", str(path), "--host", "127.0.0.1", "--port", str(port)]
    with process(args, f"http://127.0.0.1:{port}/health/liveliness", {"DATABASE_URL": "memory"}) as log:
        started = log.read_text()
    assert "'router_settings.fallbacks[0].a' names model group 'nope'" in started
    assert "deployment 'free' (fake/echo) has no known price" in started


def test_database_connection_pool_limit_from_the_environment() -> None:
    assert parse_config(_config(), env={}).general.database_connection_pool_limit == 10
    from_env = parse_config(_config(), env={"DATABASE_CONNECTION_POOL_LIMIT": "40"})
    assert from_env.general.database_connection_pool_limit == 40
    in_file = _config(general_settings={"master_key": "sk-1", "database_connection_pool_limit": 5})
    assert parse_config(in_file, env={"DATABASE_CONNECTION_POOL_LIMIT": "40"}).general \
        .database_connection_pool_limit == 5  # the file wins, as its other keys do over the environment
    with pytest.raises(ConfigError, match=r"DATABASE_CONNECTION_POOL_LIMIT='many' is not a whole number"):
        parse_config(_config(), env={"DATABASE_CONNECTION_POOL_LIMIT": "many"})
