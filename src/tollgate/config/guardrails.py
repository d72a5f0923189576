"""The top-level ``guardrails:`` list of a LiteLLM config → frozen ``GuardrailConfig`` values.

Each entry is ``{guardrail_name, litellm_params: {guardrail: bedrock, mode, default_on,
guardrailIdentifier, guardrailVersion, aws_*, api_base, mask_request_content,
mask_response_content, unreachable_fallback, timeout}, guardrail_info}``. A guardrail is a safety
control, so whatever tollgate could not enforce refuses to start: another ``guardrail`` kind than
``bedrock``, a mode other than pre_call / during_call / post_call, a duplicate name. Keys that
are not acted on are reported like every other unknown config key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tollgate.config.deployments import AwsSettings, first_error
from tollgate.errors import ConfigError

Mode = Literal["pre_call", "during_call", "post_call"]
MODES: tuple[Mode, ...] = ("pre_call", "during_call", "post_call")
SUPPORTED = ("bedrock",)
DEFAULT_TIMEOUT = 10.0  # seconds for one ApplyGuardrail call; Bedrock answers in well under one
# Never shown by GET /guardrails/list.
SECRET_PARAMS = frozenset(
    {"aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_web_identity_token"}
)
_ENTRY_KEYS = frozenset({"guardrail_name", "litellm_params", "guardrail_info", "guardrail_id"})


@dataclass(frozen=True, slots=True)
class GuardrailConfig:
    """One configured guardrail: a Bedrock guardrail (identifier and version) and when it runs."""

    name: str
    identifier: str
    version: str
    modes: tuple[Mode, ...]
    default_on: bool = False
    aws: AwsSettings = field(default_factory=AwsSettings)
    api_base: str | None = None
    mask_request: bool = False
    mask_response: bool = False
    fail_open: bool = False  # unreachable_fallback: fail_open lets requests through unchecked
    timeout: float = DEFAULT_TIMEOUT
    info: Mapping[str, Any] = field(default_factory=dict)
    public_params: Mapping[str, Any] = field(default_factory=dict)  # litellm_params minus secrets


class _Params(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    guardrail: str
    mode: Mode | list[Mode]
    default_on: bool = False
    guardrailIdentifier: str = Field(min_length=1)
    guardrailVersion: str | int = "DRAFT"
    api_base: str | None = None
    aws_region_name: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    aws_profile_name: str | None = None
    aws_role_name: str | None = None
    aws_session_name: str | None = None
    aws_web_identity_token: str | None = None
    aws_sts_endpoint: str | None = None
    aws_bedrock_runtime_endpoint: str | None = None
    mask_request_content: bool = False
    mask_response_content: bool = False
    unreachable_fallback: Literal["fail_closed", "fail_open"] = "fail_closed"
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0)


def parse_guardrails(raw: object, warnings: list[str]) -> tuple[GuardrailConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("guardrails: must be a list of guardrails")
    out = [_guardrail(entry, f"guardrails[{i}]", warnings) for i, entry in enumerate(raw)]
    seen: set[str] = set()
    for guard in out:
        if guard.name in seen:
            raise ConfigError(f"guardrails: the name '{guard.name}' is used twice")
        seen.add(guard.name)
    return tuple(out)


def _guardrail(entry: object, where: str, warnings: list[str]) -> GuardrailConfig:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping with guardrail_name and litellm_params")
    name = entry.get("guardrail_name")
    if not isinstance(name, str) or not name or "," in name:
        raise ConfigError(f"{where}.guardrail_name: a non-empty name without commas is required")
    raw_params = entry.get("litellm_params")
    if not isinstance(raw_params, dict):
        raise ConfigError(f"{where}.litellm_params: must be a mapping")
    kind = raw_params.get("guardrail")
    if kind not in SUPPORTED:
        raise ConfigError(
            f"{where}.litellm_params.guardrail: {kind!r} is not supported; tollgate runs "
            f"{', '.join(SUPPORTED)} guardrails (Amazon Bedrock ApplyGuardrail)"
        )
    try:
        params = _Params.model_validate(raw_params)
    except ValidationError as exc:
        raise ConfigError(first_error(exc, f"{where}.litellm_params")) from None
    info = entry.get("guardrail_info") or {}
    if not isinstance(info, dict):
        raise ConfigError(f"{where}.guardrail_info: must be a mapping")
    unknown = [key for key in entry if key not in _ENTRY_KEYS]
    warnings.extend(f"config: unknown key '{where}.{key}' is ignored" for key in unknown)
    warnings.extend(
        f"config: unknown key '{where}.litellm_params.{key}' is ignored" for key in params.model_extra or {}
    )
    modes = params.mode if isinstance(params.mode, list) else [params.mode]
    if not modes:
        raise ConfigError(f"{where}.litellm_params.mode: name at least one of {', '.join(MODES)}")
    return GuardrailConfig(
        name=name,
        identifier=params.guardrailIdentifier,
        version=str(params.guardrailVersion),
        modes=tuple(m for m in MODES if m in modes),
        default_on=params.default_on,
        aws=AwsSettings(
            region=params.aws_region_name,
            access_key_id=params.aws_access_key_id,
            secret_access_key=params.aws_secret_access_key,
            session_token=params.aws_session_token,
            profile_name=params.aws_profile_name,
            role_name=params.aws_role_name,
            session_name=params.aws_session_name,
            web_identity_token=params.aws_web_identity_token,
            sts_endpoint=params.aws_sts_endpoint,
            bedrock_runtime_endpoint=params.aws_bedrock_runtime_endpoint,
        ),
        api_base=params.api_base.rstrip("/") if params.api_base else None,
        mask_request=params.mask_request_content,
        mask_response=params.mask_response_content,
        fail_open=params.unreachable_fallback == "fail_open",
        timeout=params.timeout,
        info=dict(info),
        public_params={k: v for k, v in raw_params.items() if k not in SECRET_PARAMS},
    )
