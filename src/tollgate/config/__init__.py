"""The gateway's typed, frozen configuration and its LiteLLM-YAML loader.

LiteLLM compatibility is an interface, not an implementation (DESIGN.md §0.1): a LiteLLM
``config.yaml`` is read once with the files it includes (``config/files.py``), ``os.environ/VAR``
references are resolved, the four sections are validated (wrong types refuse to start with the
key path; keys not acted on are reported once, ``config/compat.py``), named credentials are filled
in (``config/credentials.py``), and the model list becomes ``Deployment`` values
(``config/deployments.py`` parses each entry, its LiteLLM model string included, once and
nowhere else).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from tollgate.config.compat import report_cache_params, report_callbacks, report_section, report_top_level
from tollgate.config.credentials import parse_credentials, with_credential
from tollgate.config.deployments import (
    AwsSettings,
    Deployment,
    ModelInfo,
    Price,
    deployment_from_dict,
    deployment_from_entry,
    first_error,
    split_model_string,
)
from tollgate.config.environment import DATABASE_CONNECTION_POOL_LIMIT, read_environment
from tollgate.config.files import read_with_includes
from tollgate.config.guardrails import GuardrailConfig, parse_guardrails
from tollgate.config.sections import GeneralSettings, LitellmSettings, RouterSettings
from tollgate.errors import ConfigError

__all__ = [
    "AwsSettings",
    "Config",
    "Deployment",
    "GeneralSettings",
    "GuardrailConfig",
    "LitellmSettings",
    "ModelInfo",
    "Price",
    "RouterSettings",
    "deployment_from_dict",
    "load_config",
    "parse_config",
    "split_model_string",
]

ENV_PREFIX = "os.environ/"
_S = TypeVar("_S", bound=BaseModel)

@dataclass(frozen=True, slots=True)
class Config:
    deployments: tuple[Deployment, ...]
    router: RouterSettings
    general: GeneralSettings
    litellm: LitellmSettings
    guardrails: tuple[GuardrailConfig, ...] = ()
    warnings: tuple[str, ...] = ()
    path: str | None = None

    @property
    def master_key(self) -> str | None:
        return self.general.master_key


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a LiteLLM-format YAML file (and the files it includes). Raises
    ``ConfigError`` with a one-line reason."""
    raw = read_with_includes(Path(path))
    config = parse_config(raw, env=read_environment() if env is None else env)
    return replace(config, path=str(path))


def parse_config(raw: object, env: Mapping[str, str]) -> Config:
    if not isinstance(raw, dict):
        raise ConfigError("config: the top level must be a mapping of sections")
    env = dict(env)
    env_vars = raw.get("environment_variables")
    if env_vars is not None and not isinstance(env_vars, dict):
        raise ConfigError("environment_variables: must be a mapping of variable names to values")
    if env_vars:
        env.update({str(k): str(v) for k, v in env_vars.items()})
    resolved = _resolve_env(raw, env, "")
    warnings = report_top_level(resolved)
    router = _section(RouterSettings, resolved.get("router_settings"), "router_settings", warnings)
    general_raw = _general_with_environment(resolved.get("general_settings"), env)
    _check_master_key(raw.get("general_settings"), general_raw)
    general = _section(GeneralSettings, general_raw, "general_settings", warnings)
    litellm = _section(LitellmSettings, resolved.get("litellm_settings"), "litellm_settings", warnings)
    warnings.extend(report_cache_params(litellm.cache_params))
    warnings.extend(report_callbacks(resolved.get("litellm_settings") or {}))
    credentials = parse_credentials(resolved.get("credential_list"))
    model_list = resolved.get("model_list") or []
    if not isinstance(model_list, list):
        raise ConfigError("model_list: must be a list of deployments")
    deployments = tuple(
        deployment_from_entry(with_credential(entry, credentials, where), where, warnings)
        for where, entry in ((f"model_list[{i}]", e) for i, e in enumerate(model_list))
    )
    if router.routing_strategy != "simple-shuffle":
        warnings.extend(
            f"config: 'model_list[{i}].litellm_params.weight' is accepted, not enforced "
            f"(only simple-shuffle routing uses weights, not {router.routing_strategy})"
            for i, dep in enumerate(deployments)
            if dep.weight is not None
        )
    guardrails = parse_guardrails(resolved.get("guardrails"), warnings)
    return Config(deployments, router, general, litellm, guardrails, tuple(warnings))


def _general_with_environment(general: object, env: Mapping[str, str]) -> object:
    """``general_settings`` with the LiteLLM variables that stand in for its keys when the file
    does not set them (``DATABASE_CONNECTION_POOL_LIMIT``)."""
    if general is not None and not isinstance(general, dict):
        return general  # _section refuses it
    general = dict(general or {})
    pool = env.get(DATABASE_CONNECTION_POOL_LIMIT, "").strip()
    if pool and "database_connection_pool_limit" not in general:
        if not pool.isdigit() or int(pool) < 1:
            raise ConfigError(f"environment variable {DATABASE_CONNECTION_POOL_LIMIT}={pool!r} "
                              "is not a whole number of at least 1")
        general["database_connection_pool_limit"] = int(pool)
    return general


def _check_master_key(raw_general: object, general: object) -> None:
    """A ``master_key`` that is there but empty is a mistake (``os.environ/VAR`` with ``VAR=""``),
    never a request for an open gateway: refuse to start. Only a config without the key runs
    unauthenticated (the CLI warns about it at start)."""
    if not isinstance(general, dict) or "master_key" not in general:
        return
    value = general["master_key"]
    if value is None or (isinstance(value, str) and not value.strip()):
        source = raw_general.get("master_key") if isinstance(raw_general, dict) else None
        cause = (f"environment variable {source[len(ENV_PREFIX):]} is set but empty"
                 if isinstance(source, str) and source.startswith(ENV_PREFIX) else "it is empty")
        raise ConfigError(f"general_settings.master_key: {cause}; set a key (leaving it empty would "
                          "open the gateway and its admin API to anyone)")


def _resolve_env(value: Any, env: Mapping[str, str], path: str) -> Any:
    if isinstance(value, str):
        if value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX) :]
            if name not in env:
                raise ConfigError(f"{path or 'config'}: environment variable {name} is not set")
            return env[name]
        return value
    if isinstance(value, dict):
        return {k: _resolve_env(v, env, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


def _section(cls: type[_S], raw: object, name: str, warnings: list[str]) -> _S:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: must be a mapping")
    try:
        section = cls.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(first_error(exc, name)) from None
    warnings.extend(report_section(name, raw, type(section).model_fields))
    return section
