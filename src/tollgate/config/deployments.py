"""LiteLLM ``model_list`` entries → ``Deployment`` values.

The LiteLLM model string (``openai/…``, ``bedrock/converse/us.anthropic…``, ARNs) is parsed
here and nowhere else; prices become exact ``Decimal``s; AWS settings are gathered; every bad
value is refused with its key path (``model_list[2].litellm_params.timeout``). Used by the YAML
loader (``config.py``) and by ``/model/new``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from tollgate.errors import ConfigError

# LiteLLM provider prefixes that speak the OpenAI chat-completions format.
OPENAI_COMPATIBLE = frozenset(
    {
        "openai",
        "hosted_vllm",
        "vllm",
        "openai_compatible",
        "custom_openai",
        "text-completion-openai",
        "groq",
        "deepseek",
        "mistral",
        "together_ai",
        "fireworks_ai",
        "openrouter",
        "xai",
        "perplexity",
        "deepinfra",
        "anyscale",
        "lm_studio",
        "ollama_chat",
        "nvidia_nim",
        "cerebras",
        "litellm_proxy",
        "azure_ai",
        "sambanova",
        "github",
        "llamafile",
    }
)
DEFAULT_API_BASES = {
    "groq": "https://api.groq.com/openai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "mistral": "https://api.mistral.ai/v1",
    "together_ai": "https://api.together.xyz/v1",
    "fireworks_ai": "https://api.fireworks.ai/inference/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "xai": "https://api.x.ai/v1",
    "perplexity": "https://api.perplexity.ai",
    "deepinfra": "https://api.deepinfra.com/v1/openai",
    "cerebras": "https://api.cerebras.ai/v1",
}


@dataclass(frozen=True, slots=True)
class Price:
    """Prices per token in US dollars; ``None`` where the table and the config say nothing."""

    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None

    @property
    def known(self) -> bool:
        return self.input is not None or self.output is not None


@dataclass(frozen=True, slots=True)
class AwsSettings:
    region: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    profile_name: str | None = None
    role_name: str | None = None
    session_name: str | None = None
    web_identity_token: str | None = field(default=None, repr=False)
    sts_endpoint: str | None = None
    bedrock_runtime_endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class ModelInfo:
    mode: Literal["chat", "embedding"] = "chat"
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    price: Price = Price()
    base_model: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Deployment:
    """One upstream model behind a public ``model_name`` (a model group)."""

    id: str
    model_name: str
    provider: str  # a key of providers.PROVIDERS: openai | anthropic | bedrock | fake
    upstream_model: str  # the id the upstream knows, without LiteLLM's provider prefix
    litellm_model: str  # the LiteLLM model string as configured, for display
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_version: str | None = None
    timeout: float | None = None
    stream_timeout: float | None = None
    max_retries: int | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    weight: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    order: int | None = None
    aws: AwsSettings | None = None
    bedrock_route: Literal["converse", "invoke"] = "converse"
    info: ModelInfo = ModelInfo()
    params: Mapping[str, Any] = field(default_factory=dict)  # other litellm_params
    source: Literal["config", "db"] = "config"


def first_error(exc: ValidationError, prefix: str) -> str:
    err = exc.errors()[0]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
    where = f"{prefix}{loc}"
    got = err.get("input")
    shown = f" (got {got!r})" if isinstance(got, str | int | float | bool) else ""
    return f"{where}: {err['msg'].lower()}{shown}"


class _Entry(BaseModel):
    model_config = ConfigDict(extra="allow")
    model_name: str
    litellm_params: dict[str, Any]
    model_info: dict[str, Any] | None = None
    tpm: int | None = None
    rpm: int | None = None


_KNOWN_PARAMS = frozenset(
    {
        "model",
        "api_base",
        "base_url",
        "api_key",
        "api_version",
        "timeout",
        "stream_timeout",
        "max_retries",
        "extra_headers",
        "headers",
        "weight",
        "rpm",
        "tpm",
        "order",
        "input_cost_per_token",
        "output_cost_per_token",
        "cache_read_input_token_cost",
        "cache_creation_input_token_cost",
        "max_input_tokens",
        "max_output_tokens",
    }
)
# Parsed (shown by /model/info) but not acted on, with the reason reported at start.
_NOT_ENFORCED_PARAMS = {
    "api_version": "Azure's API version; tollgate speaks no Azure dialect",
    "max_retries": "retries come from router_settings.num_retries and retry_policy",
}
# Read from ``Deployment.params`` by their consumers (the gateway, the fake provider).
_READ_PARAMS = frozenset({"drop_params", "mock_response", "mock_latency", "mock_error_status"})
_AWS_PARAMS = frozenset(
    {
        "aws_region_name",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_profile_name",
        "aws_role_name",
        "aws_session_name",
        "aws_web_identity_token",
        "aws_sts_endpoint",
        "aws_bedrock_runtime_endpoint",
    }
)


def deployment_from_dict(
    entry: Mapping[str, Any], where: str = "model", source: str = "config"
) -> Deployment:
    """Build one deployment from a LiteLLM ``model_list`` entry (YAML or ``/model/new`` body)."""
    warnings: list[str] = []
    dep = deployment_from_entry(dict(entry), where, warnings)
    if source == "db":
        dep = Deployment(**{**_fields(dep), "source": "db"})
    return dep


def _fields(dep: Deployment) -> dict[str, Any]:
    return {name: getattr(dep, name) for name in Deployment.__dataclass_fields__}


def deployment_from_entry(entry: object, where: str, warnings: list[str]) -> Deployment:
    """One ``model_list`` entry; non-fatal findings are appended to ``warnings``."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping with model_name and litellm_params")
    try:
        parsed = _Entry.model_validate(entry)
    except ValidationError as exc:
        raise ConfigError(first_error(exc, where)) from None
    params = parsed.litellm_params
    warnings.extend(f"config: unknown key '{where}.{key}' is ignored" for key in parsed.model_extra or {})
    warnings.extend(
        f"config: '{where}.litellm_params.{key}' is accepted, not enforced "
        f"({_NOT_ENFORCED_PARAMS.get(key, 'not sent upstream')})"
        for key in params
        if key in _NOT_ENFORCED_PARAMS
        or (key not in _KNOWN_PARAMS and key not in _READ_PARAMS and key not in _AWS_PARAMS)
    )
    model = params.get("model")
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{where}.litellm_params.model: a model string such as openai/gpt-4o is required")
    provider, upstream_model, bedrock_route = split_model_string(model, f"{where}.litellm_params.model")
    info_raw = parsed.model_info or {}
    price = Price(
        input=_price(params, info_raw, "input_cost_per_token", where),
        output=_price(params, info_raw, "output_cost_per_token", where),
        cache_read=_price(params, info_raw, "cache_read_input_token_cost", where),
        cache_write=_price(params, info_raw, "cache_creation_input_token_cost", where),
    )
    mode = info_raw.get("mode", "chat")
    if mode not in ("chat", "embedding", "completion"):
        warnings.append(f"config: {where}.model_info.mode '{mode}' is treated as chat")
    info = ModelInfo(
        mode="embedding" if mode == "embedding" else "chat",
        max_input_tokens=_info_int(params, info_raw, "max_input_tokens", where),
        max_output_tokens=_info_int(params, info_raw, "max_output_tokens", where),
        price=price,
        base_model=info_raw.get("base_model"),
        extra={k: v for k, v in info_raw.items() if k != "id"},
    )
    headers = params.get("extra_headers") or params.get("headers") or {}
    if not isinstance(headers, dict):
        raise ConfigError(
            f"{where}.litellm_params.extra_headers: must be a mapping of header names to values"
        )
    aws = None
    if provider == "bedrock":
        aws = AwsSettings(
            region=_str(params.get("aws_region_name")),
            access_key_id=_str(params.get("aws_access_key_id")),
            secret_access_key=_str(params.get("aws_secret_access_key")),
            session_token=_str(params.get("aws_session_token")),
            profile_name=_str(params.get("aws_profile_name")),
            role_name=_str(params.get("aws_role_name")),
            session_name=_str(params.get("aws_session_name")),
            web_identity_token=_str(params.get("aws_web_identity_token")),
            sts_endpoint=_str(params.get("aws_sts_endpoint")),
            bedrock_runtime_endpoint=_str(params.get("aws_bedrock_runtime_endpoint")),
        )
        _check_native_guardrail(params.get("guardrailConfig"), f"{where}.litellm_params.guardrailConfig")
    prefix = model.split("/", 1)[0] if "/" in model else ""
    api_base = _str(params.get("api_base") or params.get("base_url")) or DEFAULT_API_BASES.get(prefix)
    if aws is not None and api_base is None:
        api_base = aws.bedrock_runtime_endpoint
    weight = params.get("weight")
    rpm = parsed.rpm if parsed.rpm is not None else params.get("rpm")
    tpm = parsed.tpm if parsed.tpm is not None else params.get("tpm")
    dep_id = str(info_raw.get("id") or _stable_id(where, parsed.model_name, params))
    return Deployment(
        id=dep_id,
        model_name=parsed.model_name,
        provider=provider,
        upstream_model=upstream_model,
        litellm_model=model,
        api_base=api_base.rstrip("/") if api_base else None,
        api_key=_str(params.get("api_key")),
        api_version=_str(params.get("api_version")),
        timeout=_float(params.get("timeout"), f"{where}.litellm_params.timeout"),
        stream_timeout=_float(params.get("stream_timeout"), f"{where}.litellm_params.stream_timeout"),
        max_retries=_int(params.get("max_retries"), f"{where}.litellm_params.max_retries"),
        extra_headers={str(k): str(v) for k, v in headers.items()},
        weight=_float(weight, f"{where}.litellm_params.weight"),
        rpm=_int(rpm, f"{where}.rpm" if parsed.rpm is not None else f"{where}.litellm_params.rpm"),
        tpm=_int(tpm, f"{where}.tpm" if parsed.tpm is not None else f"{where}.litellm_params.tpm"),
        order=_int(params.get("order"), f"{where}.litellm_params.order"),
        aws=aws,
        bedrock_route=bedrock_route,
        info=info,
        params={k: v for k, v in params.items() if k not in _KNOWN_PARAMS and k not in _AWS_PARAMS},
    )


def _check_native_guardrail(value: object, where: str) -> None:
    """Bedrock's own ``guardrailConfig`` for Converse, sent as written; its two ids are required."""
    if value is None:
        return
    if not isinstance(value, dict) or not all(
        isinstance(value.get(k), str) and value.get(k) for k in ("guardrailIdentifier", "guardrailVersion")
    ):
        raise ConfigError(f"{where}: must be a mapping with guardrailIdentifier and guardrailVersion strings")


def split_model_string(model: str, where: str = "model") -> tuple[str, str, Literal["converse", "invoke"]]:
    """``bedrock/converse/us.anthropic…`` → ("bedrock", "us.anthropic…", "converse")."""
    prefix, sep, rest = model.partition("/")
    if not sep:
        # LiteLLM infers the provider of a bare model name from its own model table.
        return ("anthropic" if model.startswith("claude") else "openai"), model, "converse"
    if prefix == "bedrock":
        route: Literal["converse", "invoke"] = "converse"
        head, sep2, tail = rest.partition("/")
        if sep2 and head in ("converse", "invoke"):
            route = "converse" if head == "converse" else "invoke"
            rest = tail
        if not rest:
            raise ConfigError(f"{where}: bedrock model id missing in '{model}'")
        return "bedrock", rest, route
    if not rest:
        raise ConfigError(f"{where}: model id missing after '{prefix}/' in '{model}'")
    if prefix in ("anthropic", "fake"):
        return prefix, rest, "converse"
    if prefix in OPENAI_COMPATIBLE:
        return "openai", rest, "converse"
    supported = "openai/, anthropic/, bedrock/, bedrock/converse/, fake/, and OpenAI-compatible prefixes"
    raise ConfigError(f"{where}: provider '{prefix}' in '{model}' is not supported (use {supported})")


def _stable_id(where: str, model_name: str, params: Mapping[str, Any]) -> str:
    # Stable across restarts and replicas, so cooldowns and usage counters keep their keys.
    basis = (
        f"{where}|{model_name}|{params.get('model')}|{params.get('api_base')}|{params.get('aws_region_name')}"
    )
    return hashlib.sha256(basis.encode()).hexdigest()[:16]


def _str(value: object) -> str | None:
    return None if value is None else str(value)


def _int(value: object, where: str) -> int | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: must be an integer (got {value!r})") from None


def _float(value: object, where: str) -> float | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: must be a number (got {value!r})") from None


def _price(params: Mapping[str, Any], info: Mapping[str, Any], key: str, where: str) -> Decimal | None:
    # litellm_params wins over model_info, as in LiteLLM; the error names whichever was used.
    if key in params:
        return _decimal(params[key], f"{where}.litellm_params.{key}")
    return _decimal(info.get(key), f"{where}.model_info.{key}")


def _info_int(params: Mapping[str, Any], info: Mapping[str, Any], key: str, where: str) -> int | None:
    if key in info:
        return _int(info[key], f"{where}.model_info.{key}")
    return _int(params.get(key), f"{where}.litellm_params.{key}")


def _decimal(value: object, where: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{where}: price must be a number (got {value!r})")
    try:
        # str() first: Decimal(0.1) would carry the float's binary error into every bill.
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigError(f"{where}: price must be a number (got {value!r})") from None
    if not price.is_finite() or price < 0:
        raise ConfigError(f"{where}: price must be a finite, non-negative number (got {value!r})")
    return price
