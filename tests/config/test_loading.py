"""LiteLLM config loading: env references, type errors, files, unknown-key warnings, the examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tollgate.config import (
    load_config,
    parse_config,
)
from tollgate.errors import ConfigError

FIXTURES = Path(__file__).parents[1] / "fixtures" / "config"
EXAMPLE_ENV = {
    "LITELLM_ADMIN_KEY": "sk-admin",
    "DATABASE_URL": "postgresql://db/tollgate",
    "OPENAI_API_KEY": "sk-openai",
    "ANTHROPIC_API_KEY": "sk-ant",
    "LITELLM_MASTER_KEY": "sk-master",
    "REDIS_HOST": "redis.internal",
    "REDIS_PORT": "6380",
    "REDIS_PASSWORD": "hunter2",
}


def _error(raw: object, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, env=env or {})
    message = info.value.message
    assert "\n" not in message
    return message


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# --- environment references ---------------------------------------------------------------------


def test_env_refs_in_nested_places() -> None:
    raw = {
        "model_list": [
            {"model_name": "a", "litellm_params": {"model": "openai/x", "api_key": "os.environ/KEY"}}
        ],
        "router_settings": {
            "default_fallbacks": ["static", "os.environ/FALLBACK"],
            "redis_port": "os.environ/PORT",
            "fallbacks": [{"a": ["os.environ/FALLBACK"]}],
        },
        "general_settings": {"master_key": "os.environ/MASTER"},
        "litellm_settings": {"cache_params": {"host": "os.environ/HOST"}},
    }
    env = {"KEY": "sk-a", "FALLBACK": "b", "PORT": "6380", "MASTER": "sk-master", "HOST": "redis"}
    config = parse_config(raw, env=env)
    assert config.deployments[0].api_key == "sk-a"
    assert config.router.default_fallbacks == ["static", "b"]
    assert config.router.redis_port == 6380
    assert config.router.fallbacks == [{"a": ["b"]}]
    assert config.master_key == "sk-master"
    assert config.general.master_key == "sk-master"
    assert config.litellm.cache_params.host == "redis"
    assert env == {"KEY": "sk-a", "FALLBACK": "b", "PORT": "6380", "MASTER": "sk-master", "HOST": "redis"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"general_settings": {"master_key": "os.environ/NOPE_MASTER"}},
            "general_settings.master_key: environment variable NOPE_MASTER is not set",
        ),
        (
            {"router_settings": {"default_fallbacks": ["a", "os.environ/NOPE_FB"]}},
            "router_settings.default_fallbacks[1]: environment variable NOPE_FB is not set",
        ),
        (
            {
                "model_list": [
                    {"model_name": "a", "litellm_params": {"model": "openai/x", "api_key": "os.environ/NOPE"}}
                ]
            },
            "model_list[0].litellm_params.api_key: environment variable NOPE is not set",
        ),
        (
            {"litellm_settings": {"cache_params": {"password": "os.environ/NOPE_PW"}}},
            "litellm_settings.cache_params.password: environment variable NOPE_PW is not set",
        ),
    ],
)
def test_missing_env_var_names_path_and_variable(raw: dict[str, Any], expected: str) -> None:
    assert _error(raw) == expected


def test_environment_variables_section_is_honoured() -> None:
    raw = {
        "environment_variables": {"MASTER": "sk-from-config", "PORT": 6381},
        "general_settings": {"master_key": "os.environ/MASTER"},
        "router_settings": {"redis_port": "os.environ/PORT"},
    }
    config = parse_config(raw, env={"MASTER": "sk-from-process"})
    assert config.master_key == "sk-from-config"
    assert config.router.redis_port == 6381
    assert config.warnings == ()


def test_environment_variables_must_be_a_mapping() -> None:
    assert _error({"environment_variables": ["A=b"]}) == (
        "environment_variables: must be a mapping of variable names to values"
    )


def test_load_config_reads_process_env_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLGATE_TEST_MASTER", "sk-proc")
    config = load_config(
        _write(tmp_path, "general_settings:\n  master_key: os.environ/TOLLGATE_TEST_MASTER\n")
    )
    assert config.master_key == "sk-proc"


# --- wrong types --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"router_settings": {"num_retries": "three"}},
            "router_settings.num_retries: input should be a valid integer, unable to parse string as an "
            "integer (got 'three')",
        ),
        (
            {"general_settings": {"max_parallel_requests": "x"}},
            "general_settings.max_parallel_requests: input should be a valid integer, unable to parse string "
            "as an integer (got 'x')",
        ),
        (
            {"litellm_settings": {"drop_params": "maybe"}},
            "litellm_settings.drop_params: input should be a valid boolean, unable to interpret input "
            "(got 'maybe')",
        ),
        (
            {"router_settings": {"fallbacks": [{"gpt-4o": "claude"}]}},
            "router_settings.fallbacks[0].gpt-4o: input should be a valid list (got 'claude')",
        ),
        ({"router_settings": ["x"]}, "router_settings: must be a mapping"),
        ({"general_settings": "x"}, "general_settings: must be a mapping"),
        ({"litellm_settings": 3}, "litellm_settings: must be a mapping"),
        (
            {"model_list": [{"litellm_params": {"model": "openai/x"}}]},
            "model_list[0].model_name: field required",
        ),
        (
            {"model_list": [{"model_name": "a", "litellm_params": "openai/x"}]},
            "model_list[0].litellm_params: input should be a valid dictionary (got 'openai/x')",
        ),
        ({"model_list": [{"model_name": "a"}]}, "model_list[0].litellm_params: field required"),
        ({"model_list": ["openai/x"]}, "model_list[0]: must be a mapping with model_name and litellm_params"),
        ({"model_list": {"model_name": "a"}}, "model_list: must be a list of deployments"),
        ({"guardrails": "x"}, "guardrails: must be a list"),
        (
            {"model_list": [{"model_name": "a", "rpm": "lots", "litellm_params": {"model": "openai/x"}}]},
            "model_list[0].rpm: input should be a valid integer, unable to parse string as an integer "
            "(got 'lots')",
        ),
        (
            {"model_list": [{"model_name": "a", "litellm_params": {"model": "openai/x", "tpm": "lots"}}]},
            "model_list[0].litellm_params.tpm: must be an integer (got 'lots')",
        ),
        (
            {"model_list": [{"model_name": "a", "litellm_params": {"model": "openai/x", "timeout": "soon"}}]},
            "model_list[0].litellm_params.timeout: must be a number (got 'soon')",
        ),
        (
            {"model_list": [{"model_name": "a", "litellm_params": {"model": "openai/x", "weight": True}}]},
            "model_list[0].litellm_params.weight: must be a number (got True)",
        ),
        (
            {
                "model_list": [
                    {"model_name": "a", "litellm_params": {"model": "openai/x", "extra_headers": ["A"]}}
                ]
            },
            "model_list[0].litellm_params.extra_headers: must be a mapping of header names to values",
        ),
        (
            {
                "model_list": [
                    {"model_name": "a", "litellm_params": {"model": "openai/x"}, "model_info": ["x"]}
                ]
            },
            "model_list[0].model_info: input should be a valid dictionary",
        ),
        (
            {
                "model_list": [
                    {
                        "model_name": "a",
                        "litellm_params": {"model": "openai/y"},
                        "model_info": {"max_input_tokens": "big"},
                    }
                ]
            },
            "model_list[0].model_info.max_input_tokens: must be an integer (got 'big')",
        ),
        ({"router_settings": {1: "x"}}, "router_settings[1]: keys should be strings (got 1)"),
    ],
)
def test_wrong_types_name_the_key(raw: dict[Any, Any], expected: str) -> None:
    assert _error(raw).startswith(expected)


@pytest.mark.parametrize("raw", [["model_list"], "model_list", 3])
def test_top_level_must_be_a_mapping(raw: object) -> None:
    assert _error(raw) == "config: the top level must be a mapping of sections"


def test_top_level_list_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, "- model_name: a\n- model_name: b\n"), env={})
    assert info.value.message == f"{tmp_path / 'config.yaml'}: the top level must be a mapping of sections"


def test_yaml_syntax_error_has_line_number(tmp_path: Path) -> None:
    path = _write(tmp_path, "model_list:\n  - model_name: a\n   litellm_params: {model: openai/x}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = info.value.message
    assert message.startswith(f"{path}: not valid YAML at line 3, column 4: ")
    assert "\n" not in message


def test_unclosed_flow_sequence_reports_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "router_settings:\n  default_fallbacks: [a, b\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert info.value.message.startswith(f"{path}: not valid YAML at line 3")


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(missing, env={})
    assert info.value.message == f"cannot read config file {missing}: No such file or directory"
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, env={})
    assert info.value.message == f"cannot read config file {tmp_path}: Is a directory"
    binary = _write(tmp_path, b"model_list:\n\xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load_config(binary, env={})
    assert info.value.message == f"cannot read config file {binary}: not UTF-8 text (byte 12)"


def test_empty_file_is_an_empty_config(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "# nothing yet\n"), env={})
    assert config.deployments == ()
    assert config.warnings == ()
    assert config.router.routing_strategy == "simple-shuffle"
    assert config.master_key is None
    assert config.path == str(tmp_path / "config.yaml")


# --- unknown keys -------------------------------------------------------------------------------


def test_each_unknown_key_warns_once_naming_its_path() -> None:
    raw = {
        "model_lists": [],
        "router_settings": {"num_retry": 3, "routing_strategy": "least-busy"},
        "general_settings": {"master_keys": "x"},
        "litellm_settings": {"drop_param": True, "drop_params": True},
    }
    config = parse_config(raw, env={})
    assert sorted(config.warnings) == [
        "config: unknown key 'general_settings.master_keys' is ignored",
        "config: unknown key 'litellm_settings.drop_param' is ignored",
        "config: unknown key 'model_lists' is ignored",
        "config: unknown key 'router_settings.num_retry' is ignored",
    ]
    assert config.router.routing_strategy == "least-busy"
    assert config.litellm.drop_params is True


@pytest.mark.parametrize("section", ["router_settings", "general_settings", "litellm_settings"])
def test_single_unknown_key_per_section(section: str) -> None:
    config = parse_config({section: {"bogus_key": 1}}, env={})
    assert config.warnings == (f"config: unknown key '{section}.bogus_key' is ignored",)


# --- the shared examples ------------------------------------------------------------------------


def test_document_processing_example() -> None:
    config = load_config(FIXTURES / "document-processing.yaml", env=EXAMPLE_ENV)
    assert config.warnings == (
        "config: 'litellm_settings.callbacks' = 'callbacks.metrics_logger.MetricsLogger' is accepted, "
        "not enforced (tollgate loads no Python plugins; a JSON metric line is printed per request "
        "instead, see docs/observability.md)",
    )
    assert [d.model_name for d in config.deployments] == ["claude-primary", "claude-fallback", "claude-fast"]
    primary = config.deployments[0]
    assert (primary.provider, primary.upstream_model, primary.bedrock_route) == (
        "bedrock",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "converse",
    )
    assert primary.aws is not None and primary.aws.region == "us-east-1"
    assert (primary.tpm, primary.rpm) == (80000, 50)
    assert config.router.routing_strategy == "usage-based-routing"
    assert config.router.num_retries == 3
    assert config.router.retry_after == 5.0
    assert config.router.fallbacks == [{"claude-primary": ["claude-fallback"]}]
    assert config.router.allowed_fails == 2
    assert config.router.cooldown_time == 60.0
    assert config.master_key == "sk-admin"
    assert config.general.database_url == "postgresql://db/tollgate"
    assert config.general.max_parallel_requests == 50
    assert config.litellm.json_logs is True
    assert config.litellm.drop_params is True
    assert config.litellm.callbacks == "callbacks.metrics_logger.MetricsLogger"


def test_multi_provider_example() -> None:
    config = load_config(FIXTURES / "multi-provider.yaml", env=EXAMPLE_ENV)
    assert config.warnings == (
        "config: 'model_list[0].litellm_params.weight' is accepted, not enforced "
        "(only simple-shuffle routing uses weights, not usage-based-routing-v2)",
        "config: 'model_list[1].litellm_params.weight' is accepted, not enforced "
        "(only simple-shuffle routing uses weights, not usage-based-routing-v2)",
    )
    deps = config.deployments
    assert len(deps) == 7
    assert [(d.model_name, d.provider, d.weight) for d in deps[:2]] == [
        ("gpt-4o", "openai", 9.0),
        ("gpt-4o", "bedrock", 1.0),
    ]
    assert deps[0].api_key == "sk-openai"
    assert deps[4].provider == "anthropic"
    assert deps[4].api_key == "sk-ant"
    assert (deps[3].tpm, deps[3].rpm, deps[3].aws and deps[3].aws.region) == (200000, 2000, "us-west-2")
    assert deps[6].model_name == "titan-embed"
    assert deps[6].info.mode == "embedding"
    assert config.router.routing_strategy == "usage-based-routing-v2"
    assert config.router.enable_pre_call_check is True
    assert config.router.default_fallbacks == ["anthropic.claude-3-haiku-20240307-v1:0"]
    assert config.litellm.cache is True
    params = config.litellm.cache_params
    assert (params.type, params.host, params.port) == ("redis", "redis.internal", 6380)
    assert params.password == "hunter2"
    assert config.litellm.max_budget == 1e9
    assert config.master_key == "sk-master"
    assert config.general.store_model_in_db is True
    assert len(config.guardrails) == 1
    guard = config.guardrails[0]
    assert (guard.name, guard.identifier, guard.version) == ("bedrock-pre-guard", "ff6ujrregl1q", "1")
    assert guard.modes == ("during_call",) and guard.default_on is True


def test_example_without_its_env_names_the_first_missing_variable() -> None:
    env = {k: v for k, v in EXAMPLE_ENV.items() if k != "OPENAI_API_KEY"}
    with pytest.raises(ConfigError) as info:
        load_config(FIXTURES / "multi-provider.yaml", env=env)
    assert (
        info.value.message
        == "model_list[0].litellm_params.api_key: environment variable OPENAI_API_KEY is not set"
    )
