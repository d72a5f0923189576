"""LiteLLM's ``credential_list``: named sets of ``litellm_params`` that deployments share.

A deployment naming one with ``litellm_params.litellm_credential_name`` gets the credential's
``credential_values`` (``api_key``, ``api_base``, ``aws_*`` …) as defaults: a value the deployment
sets itself wins. ``credential_info`` is descriptive and kept for nobody. An unknown name, or a
credential without ``credential_values``, refuses to start with the key path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tollgate.errors import ConfigError

CREDENTIAL_NAME = "litellm_credential_name"


def parse_credentials(raw: object) -> dict[str, Mapping[str, Any]]:
    """``credential_list`` → credential name → its values."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ConfigError("credential_list: must be a list of credentials")
    out: dict[str, Mapping[str, Any]] = {}
    for i, entry in enumerate(raw):
        where = f"credential_list[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a mapping with credential_name and credential_values")
        name = entry.get("credential_name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}.credential_name: a name is required")
        if name in out:
            raise ConfigError(f"{where}.credential_name: '{name}' is defined twice")
        values = entry.get("credential_values")
        if not isinstance(values, dict) or not values:
            raise ConfigError(f"{where}.credential_values: must be a mapping of litellm_params")
        out[name] = values
    return out


def with_credential(entry: object, credentials: Mapping[str, Mapping[str, Any]], where: str) -> object:
    """A ``model_list`` entry with its named credential's values filled in (others unchanged)."""
    if not isinstance(entry, dict):
        return entry
    params = entry.get("litellm_params")
    if not isinstance(params, dict) or CREDENTIAL_NAME not in params:
        return entry
    name = params[CREDENTIAL_NAME]
    if not isinstance(name, str) or name not in credentials:
        known = ", ".join(sorted(credentials)) or "none are defined"
        raise ConfigError(
            f"{where}.litellm_params.{CREDENTIAL_NAME}: no credential '{name}' in credential_list ({known})"
        )
    merged = {**credentials[name], **{k: v for k, v in params.items() if k != CREDENTIAL_NAME}}
    return {**entry, "litellm_params": merged}
