"""LiteLLM config loading: model strings, litellm_params, env references, type errors, warnings."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tollgate.config import (
    Config,
    Deployment,
    deployment_from_dict,
    load_config,
    parse_config,
    split_model_string,
)
from tollgate.errors import ConfigError

FIXTURES = Path(__file__).parent / "fixtures" / "config"
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


def _one(model: str, entry_extra: dict[str, Any] | None = None, **params: Any) -> Deployment:
    entry: dict[str, Any] = {"model_name": "m", "litellm_params": {"model": model, **params}}
    entry.update(entry_extra or {})
    config = parse_config({"model_list": [entry]}, env={})
    assert len(config.deployments) == 1
    return config.deployments[0]


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


# --- model strings ------------------------------------------------------------------------------

ARN_PROFILE = (
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0"
)
ARN_APP = "arn:aws:bedrock:us-west-2:123456789012:application-inference-profile/a1b2c3d4e5f6"


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("openai/gpt-4o", ("openai", "gpt-4o", "converse")),
        ("openai/gpt-4o-mini-2024-07-18", ("openai", "gpt-4o-mini-2024-07-18", "converse")),
        (
            "hosted_vllm/meta-llama/Llama-3.1-8B-Instruct",
            ("openai", "meta-llama/Llama-3.1-8B-Instruct", "converse"),
        ),
        ("vllm/qwen", ("openai", "qwen", "converse")),
        ("groq/llama3-70b-8192", ("openai", "llama3-70b-8192", "converse")),
        ("openrouter/anthropic/claude-3.5-sonnet", ("openai", "anthropic/claude-3.5-sonnet", "converse")),
        ("litellm_proxy/my-model", ("openai", "my-model", "converse")),
        ("anthropic/claude-3-5-sonnet-20240620", ("anthropic", "claude-3-5-sonnet-20240620", "converse")),
        (
            "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
            ("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", "converse"),
        ),
        (
            "bedrock/converse/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "converse"),
        ),
        (
            "bedrock/invoke/anthropic.claude-3-haiku-20240307-v1:0",
            ("bedrock", "anthropic.claude-3-haiku-20240307-v1:0", "invoke"),
        ),
        ("bedrock/converse/us.amazon.nova-micro-v1:0", ("bedrock", "us.amazon.nova-micro-v1:0", "converse")),
        (f"bedrock/{ARN_PROFILE}", ("bedrock", ARN_PROFILE, "converse")),
        (f"bedrock/converse/{ARN_APP}", ("bedrock", ARN_APP, "converse")),
        (f"bedrock/invoke/{ARN_PROFILE}", ("bedrock", ARN_PROFILE, "invoke")),
        ("gpt-4o", ("openai", "gpt-4o", "converse")),
        ("claude-3-5-sonnet-20240620", ("anthropic", "claude-3-5-sonnet-20240620", "converse")),
        ("fake/echo", ("fake", "echo", "converse")),
    ],
)
def test_split_model_string(model: str, expected: tuple[str, str, str]) -> None:
    assert split_model_string(model) == expected
    dep = _one(model)
    assert (dep.provider, dep.upstream_model, dep.bedrock_route) == expected
    assert dep.litellm_model == model


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        ("vertex_ai/gemini-1.5-pro", "provider 'vertex_ai' in 'vertex_ai/gemini-1.5-pro' is not supported"),
        ("azure/gpt-4o", "provider 'azure' in 'azure/gpt-4o' is not supported"),
        ("bedrock/", "bedrock model id missing in 'bedrock/'"),
        ("bedrock/converse/", "bedrock model id missing in 'bedrock/converse/'"),
        ("openai/", "model id missing after 'openai/' in 'openai/'"),
    ],
)
def test_bad_model_string_names_the_path(model: str, fragment: str) -> None:
    ok = {"model_name": "ok", "litellm_params": {"model": "openai/x"}}
    bad = {"model_name": "bad", "litellm_params": {"model": model}}
    message = _error({"model_list": [ok, bad]})
    assert message.startswith("model_list[1].litellm_params.model: ")
    assert fragment in message


def test_missing_model_string() -> None:
    message = _error({"model_list": [{"model_name": "a", "litellm_params": {"api_key": "k"}}]})
    assert message == "model_list[0].litellm_params.model: a model string such as openai/gpt-4o is required"


@pytest.mark.parametrize(
    ("model", "api_base"),
    [
        ("groq/llama3-70b-8192", "https://api.groq.com/openai/v1"),
        ("deepseek/deepseek-chat", "https://api.deepseek.com/v1"),
        ("mistral/mistral-large-latest", "https://api.mistral.ai/v1"),
        ("together_ai/meta-llama/Llama-3-70b", "https://api.together.xyz/v1"),
        ("fireworks_ai/accounts/fireworks/models/llama", "https://api.fireworks.ai/inference/v1"),
        ("openrouter/openai/gpt-4o", "https://openrouter.ai/api/v1"),
        ("xai/grok-2", "https://api.x.ai/v1"),
        ("hosted_vllm/qwen", None),
        ("openai/gpt-4o", None),
        ("gpt-4o", None),
        ("anthropic/claude-3-haiku-20240307", None),
    ],
)
def test_default_api_base(model: str, api_base: str | None) -> None:
    assert _one(model).api_base == api_base


def test_explicit_api_base_wins_and_loses_trailing_slash() -> None:
    assert _one("groq/llama3", api_base="http://127.0.0.1:8900/v1/").api_base == "http://127.0.0.1:8900/v1"
    assert _one("hosted_vllm/qwen", base_url="http://vllm:8000/v1").api_base == "http://vllm:8000/v1"


def test_bedrock_runtime_endpoint_becomes_api_base() -> None:
    dep = _one(
        "bedrock/converse/us.amazon.nova-lite-v1:0", aws_bedrock_runtime_endpoint="http://127.0.0.1:8900/"
    )
    assert dep.api_base == "http://127.0.0.1:8900"
    assert dep.aws is not None
    assert dep.aws.bedrock_runtime_endpoint == "http://127.0.0.1:8900/"


# --- litellm_params -----------------------------------------------------------------------------


def test_litellm_params_fields() -> None:
    dep = _one(
        "openai/gpt-4o",
        api_base="https://api.openai.com/v1",
        api_key="sk-123",
        api_version="2024-06-01",
        timeout="30",
        stream_timeout=12.5,
        max_retries=2,
        extra_headers={"X-Team": "search", "X-Num": 7},
        weight=3,
        order=1,
        temperature=0.2,
    )
    assert dep.api_base == "https://api.openai.com/v1"
    assert dep.api_key == "sk-123"
    assert dep.api_version == "2024-06-01"
    assert dep.timeout == 30.0
    assert dep.stream_timeout == 12.5
    assert dep.max_retries == 2
    assert dict(dep.extra_headers) == {"X-Team": "search", "X-Num": "7"}
    assert dep.weight == 3.0
    assert dep.order == 1
    assert dep.aws is None
    assert dict(dep.params) == {"temperature": 0.2}
    assert dep.source == "config"
    assert "sk-123" not in repr(dep)


def test_headers_alias() -> None:
    assert dict(_one("openai/x", headers={"A": "b"}).extra_headers) == {"A": "b"}


def test_rpm_tpm_at_entry_and_param_level() -> None:
    at_param = _one("openai/x", rpm=10, tpm="1000")
    assert (at_param.rpm, at_param.tpm) == (10, 1000)
    at_entry = _one("openai/x", entry_extra={"rpm": 50, "tpm": 80000})
    assert (at_entry.rpm, at_entry.tpm) == (50, 80000)
    both = _one("openai/x", entry_extra={"rpm": 5, "tpm": 500}, rpm=10, tpm=1000)
    assert (both.rpm, both.tpm) == (5, 500)
    neither = _one("openai/x")
    assert (neither.rpm, neither.tpm) == (None, None)


def test_aws_params_with_env_refs() -> None:
    entry = {
        "model_name": "claude",
        "litellm_params": {
            "model": "bedrock/converse/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "aws_region_name": "os.environ/AWS_REGION",
            "aws_access_key_id": "os.environ/AWS_ACCESS_KEY_ID",
            "aws_secret_access_key": "os.environ/AWS_SECRET_ACCESS_KEY",
            "aws_session_token": "tok",
            "aws_profile_name": "prod",
            "aws_role_name": "arn:aws:iam::123456789012:role/bedrock",
            "aws_session_name": "tollgate",
            "aws_web_identity_token": "os.environ/WEB_TOKEN",
            "aws_sts_endpoint": "https://sts.us-east-1.amazonaws.com",
        },
    }
    env = {
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret/key",
        "WEB_TOKEN": "jwt",
    }
    dep = parse_config({"model_list": [entry]}, env=env).deployments[0]
    aws = dep.aws
    assert aws is not None
    assert aws.region == "eu-west-1"
    assert aws.access_key_id == "AKIAEXAMPLE"
    assert aws.secret_access_key == "secret/key"
    assert aws.session_token == "tok"
    assert aws.profile_name == "prod"
    assert aws.role_name == "arn:aws:iam::123456789012:role/bedrock"
    assert aws.session_name == "tollgate"
    assert aws.web_identity_token == "jwt"
    assert aws.sts_endpoint == "https://sts.us-east-1.amazonaws.com"
    assert aws.bedrock_runtime_endpoint is None
    assert dep.api_base is None
    assert dict(dep.params) == {}
    assert "secret/key" not in repr(dep)


def test_model_info_prices_are_exact_decimals(tmp_path: Path) -> None:
    text = """
model_list:
  - model_name: claude
    litellm_params:
      model: anthropic/claude-3-5-sonnet-20240620
    model_info:
      input_cost_per_token: 3e-06
      output_cost_per_token: "1.5e-05"
      cache_read_input_token_cost: 0.0000003
      cache_creation_input_token_cost: 3.75e-06
  - model_name: cheap
    litellm_params:
      model: openai/gpt-4o-mini
      input_cost_per_token: 0.00000015
    model_info:
      input_cost_per_token: 1
      output_cost_per_token: 0.0000006
"""
    config = load_config(_write(tmp_path, text), env={})
    price = config.deployments[0].info.price
    assert price.input == Decimal("0.000003")
    assert price.output == Decimal("0.000015")
    assert price.cache_read == Decimal("0.0000003")
    assert price.cache_write == Decimal("0.00000375")
    # the float's binary error must not reach the bill
    assert price.cache_read != Decimal(float("3e-07"))
    assert price.known
    cheap = config.deployments[1].info.price
    assert cheap.input == Decimal("0.00000015")  # litellm_params wins over model_info
    assert cheap.output == Decimal("0.0000006")
    assert cheap.cache_read is None
    assert not _one("openai/x").info.price.known


@pytest.mark.parametrize(
    ("place", "value", "expected"),
    [
        (
            "model_info",
            "abc",
            "model_list[0].model_info.input_cost_per_token: price must be a number (got 'abc')",
        ),
        (
            "litellm_params",
            "free",
            "model_list[0].litellm_params.input_cost_per_token: price must be a number",
        ),
        ("model_info", "nan", "model_list[0].model_info.input_cost_per_token: price must be a finite"),
        ("model_info", "-1e-06", "model_list[0].model_info.input_cost_per_token: price must be a finite"),
        ("model_info", True, "model_list[0].model_info.input_cost_per_token: price must be a number"),
    ],
)
def test_bad_price_names_the_key(place: str, value: object, expected: str) -> None:
    entry: dict[str, Any] = {"model_name": "a", "litellm_params": {"model": "openai/x"}, "model_info": {}}
    entry[place]["input_cost_per_token"] = value
    assert _error({"model_list": [entry]}).startswith(expected)


def test_model_info_fields() -> None:
    dep = _one(
        "bedrock/amazon.titan-embed-text-v2:0",
        entry_extra={
            "model_info": {
                "mode": "embedding",
                "max_input_tokens": "8192",
                "max_output_tokens": 1024,
                "id": "titan-1",
                "base_model": "amazon.titan-embed-text-v2:0",
                "description": "embeddings",
            }
        },
    )
    assert dep.info.mode == "embedding"
    assert dep.info.max_input_tokens == 8192
    assert dep.info.max_output_tokens == 1024
    assert dep.info.base_model == "amazon.titan-embed-text-v2:0"
    assert dep.id == "titan-1"
    assert "id" not in dep.info.extra
    assert dep.info.extra["description"] == "embeddings"


def test_max_tokens_from_litellm_params() -> None:
    dep = _one("openai/x", max_input_tokens=128000, max_output_tokens="4096")
    assert (dep.info.max_input_tokens, dep.info.max_output_tokens) == (128000, 4096)


def test_unknown_mode_is_chat_with_a_warning() -> None:
    entry = {"model_name": "a", "litellm_params": {"model": "openai/x"}, "model_info": {"mode": "image"}}
    config = parse_config({"model_list": [entry]}, env={})
    assert config.deployments[0].info.mode == "chat"
    assert config.warnings == ("config: model_list[0].model_info.mode 'image' is treated as chat",)


def test_deployment_from_dict_for_the_database() -> None:
    dep = deployment_from_dict(
        {
            "model_name": "model-cheap",
            "litellm_params": {"model": "bedrock/converse/us.amazon.nova-micro-v1:0"},
        },
        where="model abc",
        source="db",
    )
    assert dep.source == "db"
    assert (dep.provider, dep.upstream_model) == ("bedrock", "us.amazon.nova-micro-v1:0")
    with pytest.raises(ConfigError) as info:
        deployment_from_dict({"model_name": "x", "litellm_params": {"model": "nope/x"}}, where="model abc")
    assert info.value.message.startswith("model abc.litellm_params.model: provider 'nope'")


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


# --- deployment ids -----------------------------------------------------------------------------


def _ids(config: Config) -> list[str]:
    return [d.id for d in config.deployments]


def test_deployment_ids_are_stable_and_positional() -> None:
    first = load_config(FIXTURES / "multi-provider.yaml", env=EXAMPLE_ENV)
    second = load_config(FIXTURES / "multi-provider.yaml", env=EXAMPLE_ENV)
    assert _ids(first) == _ids(second)
    assert len(set(_ids(first))) == 7
    assert all(len(i) == 16 and int(i, 16) >= 0 for i in _ids(first))
    twin = {"model_name": "same", "litellm_params": {"model": "openai/x", "api_base": "http://a"}}
    config = parse_config({"model_list": [twin, dict(twin)]}, env={})
    a, b = _ids(config)
    assert a != b
    assert _ids(parse_config({"model_list": [twin, dict(twin)]}, env={})) == [a, b]
