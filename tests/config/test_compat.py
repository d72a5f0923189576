"""No LiteLLM setting is silently ignored: every key is acted on, met by design, or reported with
its path as "accepted, not enforced" (or as unknown)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tollgate.config import parse_config
from tollgate.config.compat import BY_DESIGN, NOT_ENFORCED, TOP_LEVEL_NOT_ENFORCED
from tollgate.errors import ConfigError

NOT_ENFORCED_KEYS = [(section, key) for section, keys in NOT_ENFORCED.items() for key in keys]
# Values of the right type for the keys a section model types (any other key takes ``true``).
SAMPLES: dict[str, object] = {
    "alerting": ["slack"],
    "alert_to_webhook_url": {"budget_alerts": "https://hooks.example/x"},
    "failure_callback": ["sentry"],
    "default_team_settings": [{"team_id": "t"}],
    "max_end_user_budget": 1,
    "default_key_generate_params": {"max_budget": 1},
}


def _warnings(raw: dict[str, Any]) -> tuple[str, ...]:
    return parse_config(raw, env={}).warnings


@pytest.mark.parametrize(
    ("section", "key"), NOT_ENFORCED_KEYS, ids=[f"{s}.{k}" for s, k in NOT_ENFORCED_KEYS]
)
def test_each_not_enforced_key_is_reported_once_with_its_path(section: str, key: str) -> None:
    warnings = _warnings({section: {key: SAMPLES.get(key, True)}})
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"config: '{section}.{key}' is accepted, not enforced (")
    assert NOT_ENFORCED[section][key] in warnings[0]


@pytest.mark.parametrize("value", [None, False, 0, "", [], {}])
def test_a_not_enforced_key_that_asks_for_nothing_is_not_reported(value: object) -> None:
    assert _warnings({"litellm_settings": {"redact_user_api_key_info": value}}) == ()
    assert _warnings({"general_settings": {"allowed_ips": value}}) == ()


@pytest.mark.parametrize("name", sorted(TOP_LEVEL_NOT_ENFORCED))
def test_each_top_level_section_not_enforced_is_reported(name: str) -> None:
    assert _warnings({name: [{"anything": 1}]}) == (
        f"config: '{name}' is accepted, not enforced ({TOP_LEVEL_NOT_ENFORCED[name]})",
    )


def test_keys_met_by_design_load_silently() -> None:
    raw = {section: {key: True for key in keys} for section, keys in BY_DESIGN.items()}
    assert _warnings(raw) == ()


def test_the_issue_list_is_reported() -> None:
    """The settings issue 12 found accepted without a word."""
    raw = {
        # a complete guardrail is acted on (docs/guardrails.md), so it says nothing
        "guardrails": [
            {"guardrail_name": "g",
             "litellm_params": {"guardrail": "bedrock", "mode": "pre_call", "guardrailIdentifier": "x"}},
        ],
        "litellm_settings": {
            "cache": True,
            "callbacks": ["custom_callbacks.proxy_handler_instance", "otel"],
            "success_callback": ["s3", "langsmith", "prometheus"],
        },
        "router_settings": {"routing_strategy": "usage-based-routing"},
        "model_list": [
            {"model_name": "a", "litellm_params": {"model": "fake/a", "weight": 2, "temperature": 0.2}},
        ],
    }
    assert _warnings(raw) == (
        "config: 'litellm_settings.callbacks[0]' = 'custom_callbacks.proxy_handler_instance' is accepted, "
        "not enforced (tollgate loads no Python plugins; a JSON metric line is printed per request instead, "
        "see docs/observability.md)",
        "config: 'litellm_settings.success_callback[0]' = 's3' is accepted, not enforced "
        "(tollgate loads no Python plugins)",
        "config: 'litellm_settings.success_callback[1]' = 'langsmith' is accepted, not enforced "
        "(tollgate loads no Python plugins)",
        "config: 'model_list[0].litellm_params.temperature' is accepted, not enforced (not sent upstream)",
        "config: 'model_list[0].litellm_params.weight' is accepted, not enforced "
        "(only simple-shuffle routing uses weights, not usage-based-routing)",
    )


def test_weight_under_simple_shuffle_is_acted_on() -> None:
    raw = {"model_list": [{"model_name": "a", "litellm_params": {"model": "fake/a", "weight": 2}}]}
    assert _warnings(raw) == ()


def test_unknown_keys_of_an_entry_are_reported() -> None:
    raw = {"model_list": [{"model_name": "a", "litellm_params": {"model": "fake/a"}, "modelinfo": {}}]}
    assert _warnings(raw) == ("config: unknown key 'model_list[0].modelinfo' is ignored",)


def test_settings_other_helpers_enforce_are_typed_and_not_reported() -> None:
    raw = {
        "general_settings": {
            "max_request_size_mb": 2.5,
            "enforced_params": ["user", "metadata.team"],
            "store_model_in_db": False,
            "disable_prisma_schema_update": True,
            "user_api_key_cache_ttl": 30,
        },
        "litellm_settings": {"upperbound_key_generate_params": {"max_budget": 100}, "ssl_verify": False},
    }
    config = parse_config(raw, env={})
    assert config.warnings == ()
    assert config.general.max_request_size_mb == 2.5
    assert config.general.enforced_params == ["user", "metadata.team"]
    assert config.general.disable_prisma_schema_update is True
    assert config.general.user_api_key_cache_ttl == 30
    assert config.litellm.upperbound_key_generate_params == {"max_budget": 100}
    assert config.litellm.ssl_verify is False


def test_ssl_verify_names_a_ca_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    assert parse_config({"litellm_settings": {"ssl_verify": str(bundle)}}, env={}).litellm.ssl_verify == str(
        bundle
    )
    with pytest.raises(
        ConfigError, match=r"litellm_settings\.ssl_verify: .*path of a ca bundle file \(got '/"
    ):
        parse_config({"litellm_settings": {"ssl_verify": str(tmp_path / "missing.pem")}}, env={})


def test_deployment_settings_parsed_but_not_acted_on_are_reported() -> None:
    entry = {
        "model_name": "a",
        "litellm_params": {"model": "openai/x", "api_version": "2024-06-01", "max_retries": 3},
    }
    assert _warnings({"model_list": [entry]}) == (
        "config: 'model_list[0].litellm_params.api_version' is accepted, not enforced "
        "(Azure's API version; tollgate speaks no Azure dialect)",
        "config: 'model_list[0].litellm_params.max_retries' is accepted, not enforced "
        "(retries come from router_settings.num_retries and retry_policy)",
    )


def test_the_compatibility_page_lists_every_key_tollgate_classifies() -> None:
    """docs/litellm-compat.md stays true to config/compat.py and the section models."""
    from tollgate.config.sections import GeneralSettings, LitellmSettings, RouterSettings

    page = (Path(__file__).resolve().parents[2] / "docs" / "litellm-compat.md").read_text(encoding="utf-8")
    sections = {
        "router_settings": RouterSettings,
        "general_settings": GeneralSettings,
        "litellm_settings": LitellmSettings,
    }
    for name, model in sections.items():
        table = page.split(f"## `{name}`", 1)[1].split("\n## ", 1)[0]
        keys = set(model.model_fields) | set(NOT_ENFORCED[name]) | set(BY_DESIGN[name])
        missing = sorted(key for key in keys if f"| `{key}` |" not in table)
        assert missing == [], f"{name}: {missing}"
    for key in TOP_LEVEL_NOT_ENFORCED:
        assert f"| `{key}` | ⚠ accepted, not enforced |" in page
