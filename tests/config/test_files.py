"""``include:`` (other config files merged in) and ``credential_list`` (named litellm_params)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollgate.config import load_config, parse_config
from tollgate.errors import ConfigError


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_include_merges_model_lists_and_settings(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "models/openai.yaml",
        "model_list:\n  - model_name: b\n    litellm_params: {model: fake/b}\n"
        "litellm_settings:\n  drop_params: true\n  num_retries: 7\n",
    )
    _write(
        tmp_path, "models/more.yaml", "model_list:\n  - model_name: c\n    litellm_params: {model: fake/c}\n"
    )
    main = _write(
        tmp_path,
        "config.yaml",
        "include:\n  - models/openai.yaml\n  - models/more.yaml\n"
        "model_list:\n  - model_name: a\n    litellm_params: {model: fake/a}\n"
        "litellm_settings:\n  num_retries: 1\n",
    )
    config = load_config(main, env={})
    assert [d.model_name for d in config.deployments] == ["a", "b", "c"]
    assert config.litellm.drop_params is True  # from the included file
    assert config.litellm.num_retries == 1  # the including file wins a key both set
    assert config.warnings == ()
    assert config.path == str(main)


def test_include_takes_one_file_name_and_nests(tmp_path: Path) -> None:
    _write(tmp_path, "deep.yaml", "general_settings:\n  master_key: sk-deep\n")
    _write(tmp_path, "sub/mid.yaml", "include: ../deep.yaml\nmodel_list: []\n")
    main = _write(tmp_path, "config.yaml", "include: sub/mid.yaml\n")
    assert load_config(main, env={}).master_key == "sk-deep"


def test_environment_references_in_included_files_resolve(tmp_path: Path) -> None:
    _write(tmp_path, "keys.yaml", "general_settings:\n  master_key: os.environ/MASTER\n")
    main = _write(tmp_path, "config.yaml", "include: [keys.yaml]\n")
    assert load_config(main, env={"MASTER": "sk-env"}).master_key == "sk-env"


@pytest.mark.parametrize(
    ("files", "fragment"),
    [
        ({"config.yaml": "include: [missing.yaml]\n"}, "cannot read config file"),
        ({"config.yaml": "include: [a.yaml]\n", "a.yaml": "include: [config.yaml]\n"}, "includes itself"),
        ({"config.yaml": "include: {a: 1}\n"}, "include must be a file name or a list of file names"),
        (
            {"config.yaml": "include: [a.yaml]\nrouter_settings: []\n", "a.yaml": "router_settings: {}\n"},
            "'router_settings' is set both in",
        ),
        (
            {"config.yaml": "include: [a.yaml]\n", "a.yaml": "- not a mapping\n"},
            "must be a mapping of sections",
        ),
    ],
    ids=["missing", "cycle", "not-a-list", "conflict", "not-a-mapping"],
)
def test_bad_includes_refuse_with_a_clear_line(tmp_path: Path, files: dict[str, str], fragment: str) -> None:
    for name, text in files.items():
        _write(tmp_path, name, text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "config.yaml", env={})
    assert fragment in info.value.message
    assert "\n" not in info.value.message


CREDENTIALS = [
    {
        "credential_name": "shared-openai",
        "credential_values": {"api_key": "sk-from-credential", "api_base": "https://llm.internal/v1"},
        "credential_info": {"description": "production"},
    },
    {"credential_name": "aws-east", "credential_values": {"aws_region_name": "us-east-1"}},
]


def test_credentials_fill_in_litellm_params_and_explicit_values_win() -> None:
    raw = {
        "credential_list": CREDENTIALS,
        "model_list": [
            {
                "model_name": "a",
                "litellm_params": {"model": "openai/x", "litellm_credential_name": "shared-openai"},
            },
            {
                "model_name": "b",
                "litellm_params": {
                    "model": "openai/y",
                    "litellm_credential_name": "shared-openai",
                    "api_base": "https://other/v1",
                },
            },
            {
                "model_name": "c",
                "litellm_params": {
                    "model": "bedrock/anthropic.claude-x",
                    "litellm_credential_name": "aws-east",
                },
            },
        ],
    }
    config = parse_config(raw, env={})
    a, b, c = config.deployments
    assert (a.api_key, a.api_base) == ("sk-from-credential", "https://llm.internal/v1")
    assert (b.api_key, b.api_base) == ("sk-from-credential", "https://other/v1")
    assert c.aws is not None and c.aws.region == "us-east-1"
    assert config.warnings == ()
    assert "litellm_credential_name" not in a.params


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (
            {
                "model_list": [
                    {
                        "model_name": "a",
                        "litellm_params": {"model": "openai/x", "litellm_credential_name": "x"},
                    }
                ]
            },
            "model_list[0].litellm_params.litellm_credential_name: no credential 'x' in credential_list",
        ),
        ({"credential_list": {"a": 1}}, "credential_list: must be a list"),
        (
            {"credential_list": [{"credential_values": {"api_key": "k"}}]},
            "credential_list[0].credential_name",
        ),
        ({"credential_list": [{"credential_name": "a"}]}, "credential_list[0].credential_values"),
        ({"credential_list": [CREDENTIALS[0], CREDENTIALS[0]]}, "'shared-openai' is defined twice"),
    ],
    ids=["unknown-name", "not-a-list", "no-name", "no-values", "twice"],
)
def test_bad_credentials_refuse(raw: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, env={})
    assert fragment in info.value.message


def test_credential_values_may_reference_the_environment() -> None:
    raw = {
        "credential_list": [
            {"credential_name": "c", "credential_values": {"api_key": "os.environ/UPSTREAM_KEY"}}
        ],
        "model_list": [
            {"model_name": "a", "litellm_params": {"model": "openai/x", "litellm_credential_name": "c"}}
        ],
    }
    assert parse_config(raw, env={"UPSTREAM_KEY": "sk-env"}).deployments[0].api_key == "sk-env"
