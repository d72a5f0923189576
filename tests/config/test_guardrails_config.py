"""The top-level ``guardrails:`` list → ``GuardrailConfig``: what is read, what refuses to start."""

from __future__ import annotations

from typing import Any

import pytest

from tollgate.config import parse_config
from tollgate.errors import ConfigError


def _config(*guardrails: dict[str, Any], model_list: list[dict[str, Any]] | None = None) -> Any:
    return parse_config(
        {"model_list": model_list or [], "guardrails": list(guardrails)}, env={"KEY": "secret"}
    )


def _guard(**params: Any) -> dict[str, Any]:
    base = {"guardrail": "bedrock", "mode": "pre_call", "guardrailIdentifier": "gr-1"}
    return {"guardrail_name": "g", "litellm_params": {**base, **params}}


def test_litellm_entry_becomes_a_typed_guardrail() -> None:
    entry = _guard(
        mode=["post_call", "pre_call"], guardrailVersion=3, default_on=True, aws_region_name="eu-west-1",
        aws_secret_access_key="os.environ/KEY", api_base="http://127.0.0.1:9/", mask_request_content=True,
        unreachable_fallback="fail_open", timeout=2.5,
    )  # fmt: skip
    entry["guardrail_info"] = {"owner": "security"}
    guard = _config(entry).guardrails[0]
    assert (guard.name, guard.identifier, guard.version) == ("g", "gr-1", "3")
    assert guard.modes == ("pre_call", "post_call")  # the lifecycle's order, whatever the config's
    assert guard.default_on and guard.mask_request and not guard.mask_response
    assert guard.aws.region == "eu-west-1" and guard.aws.secret_access_key == "secret"
    assert guard.api_base == "http://127.0.0.1:9" and guard.fail_open and guard.timeout == 2.5
    assert guard.info == {"owner": "security"}
    assert "aws_secret_access_key" not in guard.public_params and guard.public_params["mode"] == [
        "post_call",
        "pre_call",
    ]


def test_defaults() -> None:
    guard = _config(_guard()).guardrails[0]
    assert (guard.version, guard.default_on, guard.fail_open, guard.timeout) == ("DRAFT", False, False, 10.0)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_guard(guardrail="aporia"), "guardrails[0].litellm_params.guardrail: 'aporia' is not supported"),
        (_guard(mode="logging_only"), "guardrails[0].litellm_params.mode"),
        (_guard(mode=[]), "guardrails[0].litellm_params.mode: name at least one of"),
        (_guard(guardrailIdentifier=""), "guardrails[0].litellm_params.guardrailIdentifier"),
        (_guard(timeout=0), "guardrails[0].litellm_params.timeout"),
        (_guard(unreachable_fallback="maybe"), "guardrails[0].litellm_params.unreachable_fallback"),
        ({"guardrail_name": "a,b", "litellm_params": {}}, "guardrails[0].guardrail_name"),
        ({"guardrail_name": "g"}, "guardrails[0].litellm_params: must be a mapping"),
        ("bedrock", "guardrails[0]: must be a mapping"),
    ],
)
def test_what_cannot_be_enforced_refuses_to_start(entry: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _config(entry)
    assert info.value.message.startswith(message), info.value.message


def test_a_name_used_twice_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="the name 'g' is used twice"):
        _config(_guard(), _guard())


def test_keys_not_acted_on_are_reported() -> None:
    entry = {**_guard(disable_exception_on_block=True), "guardrail_colour": "red"}
    warnings = _config(entry).warnings
    assert "config: unknown key 'guardrails[0].guardrail_colour' is ignored" in warnings
    assert (
        "config: unknown key 'guardrails[0].litellm_params.disable_exception_on_block' is ignored" in warnings
    )


def test_bedrock_deployment_guardrail_config_needs_both_ids() -> None:
    params = {"model": "bedrock/amazon.nova-micro-v1:0", "guardrailConfig": {"guardrailIdentifier": "x"}}
    model = {"model_name": "nova", "litellm_params": params}
    with pytest.raises(ConfigError, match=r"model_list\[0\]\.litellm_params\.guardrailConfig"):
        _config(model_list=[model])
    model["litellm_params"]["guardrailConfig"]["guardrailVersion"] = "1"  # type: ignore[index]
    assert _config(model_list=[model]).deployments[0].params["guardrailConfig"]["guardrailVersion"] == "1"
