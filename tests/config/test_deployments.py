"""LiteLLM config deployments: model strings, litellm_params, model_info prices, deployment ids."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.config.test_loading import EXAMPLE_ENV, FIXTURES, _error, _write
from tollgate.config import (
    Config,
    Deployment,
    deployment_from_dict,
    load_config,
    parse_config,
    split_model_string,
)
from tollgate.errors import ConfigError


def _one(model: str, entry_extra: dict[str, Any] | None = None, **params: Any) -> Deployment:
    entry: dict[str, Any] = {"model_name": "m", "litellm_params": {"model": model, **params}}
    entry.update(entry_extra or {})
    config = parse_config({"model_list": [entry]}, env={})
    assert len(config.deployments) == 1
    return config.deployments[0]






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
