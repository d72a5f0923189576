"""The gateway's typed, frozen configuration and its LiteLLM-YAML loader.

LiteLLM compatibility is an interface, not an implementation (DESIGN.md §0.1): a LiteLLM
``config.yaml`` is read once, ``os.environ/VAR`` references are resolved, the four sections are
validated (wrong types refuse to start with the key path; unknown keys are warned about once),
and the model list becomes ``Deployment`` values (``config/deployments.py`` parses each entry,
its LiteLLM model string included, once and nowhere else).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

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
from tollgate.config.environment import read_environment
from tollgate.config.guardrails import GuardrailConfig, parse_guardrails
from tollgate.config.sections import (
    KNOWN_TOP_LEVEL,
    GeneralSettings,
    LitellmSettings,
    RouterSettings,
    unknown_keys,
)
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
    """Read and validate a LiteLLM-format YAML file. Raises ``ConfigError`` with a one-line reason."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read config file {path}: not UTF-8 text (byte {exc.start})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    if raw is None:
        raw = {}
    config = parse_config(raw, env=read_environment() if env is None else env)
    return Config(
        config.deployments,
        config.router,
        config.general,
        config.litellm,
        config.guardrails,
        config.warnings,
        str(path),
    )


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
    warnings: list[str] = [
        f"config: unknown key '{key}' is ignored" for key in resolved if key not in KNOWN_TOP_LEVEL
    ]
    router = _section(RouterSettings, resolved.get("router_settings"), "router_settings", warnings)
    general = _section(GeneralSettings, resolved.get("general_settings"), "general_settings", warnings)
    litellm = _section(LitellmSettings, resolved.get("litellm_settings"), "litellm_settings", warnings)
    model_list = resolved.get("model_list") or []
    if not isinstance(model_list, list):
        raise ConfigError("model_list: must be a list of deployments")
    deployments = tuple(
        deployment_from_entry(entry, f"model_list[{i}]", warnings) for i, entry in enumerate(model_list)
    )
    guardrails = parse_guardrails(resolved.get("guardrails"), warnings)
    return Config(deployments, router, general, litellm, guardrails, tuple(warnings))


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
    warnings.extend(f"config: unknown key '{name}.{key}' is ignored" for key in unknown_keys(section))
    return section
