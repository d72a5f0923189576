"""The process environment, read in one place.

``read_environment()`` is the only reader of ``os.environ`` in tollgate: the CLI and the
composition root call it once and hand the snapshot (or values taken from it) to whatever needs
them, so no module deep in the pipeline looks at the environment behind its caller's back.
(botocore reads the AWS variables of its own credential chain itself, and its endpoint overrides
such as ``AWS_ENDPOINT_URL_BEDROCK_AGENT`` for managed prompts; that is the library's documented
contract, not ours.)

tollgate's own variables, besides LiteLLM's that the config may reference as ``os.environ/VAR``:
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from types import MappingProxyType

from tollgate.errors import ConfigError

CONFIG = "TOLLGATE_CONFIG"  # the config file a worker process loads (set by ``tollgate serve``)
REDIS_PREFIX = "TOLLGATE_REDIS_PREFIX"  # prefix of every Redis key and channel (default tollgate)
SPEND_SPILL_DIR = "TOLLGATE_SPEND_SPILL_DIR"  # where unwritten spend rows are spilled
PROMETHEUS_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's multi-process mode
DATABASE_URL = "DATABASE_URL"  # LiteLLM's: the database when general_settings has none
REDIS_URL = "REDIS_URL"  # also REDIS_HOST / REDIS_PORT / REDIS_PASSWORD, as LiteLLM
AWS_REGION_NAMES = ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")  # LiteLLM's, then the SDKs'
DISABLE_SCHEMA_UPDATE = "DISABLE_SCHEMA_UPDATE"  # LiteLLM's: `serve` must not migrate the database
# The SDKs' endpoint overrides, service-specific first; guardrails call ApplyGuardrail there.
BEDROCK_RUNTIME_ENDPOINTS = ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL")
# LiteLLM's: database connections per process when general_settings has no database_connection_pool_limit
DATABASE_CONNECTION_POOL_LIMIT = "DATABASE_CONNECTION_POOL_LIMIT"
SERVER_ROOT_PATH = "SERVER_ROOT_PATH"  # LiteLLM's: the path prefix every route is served under
_PLAIN_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")
LITELLM_SALT_KEY = "LITELLM_SALT_KEY"  # LiteLLM's: encrypts stored model credentials (else the master key)


def read_environment() -> Mapping[str, str]:
    """A read-only snapshot of the environment as it is now."""
    return MappingProxyType(dict(os.environ))


def server_root_path(env: Mapping[str, str]) -> str:
    """``SERVER_ROOT_PATH`` as a prefix: ``""`` at the root, else ``/a/b`` (leading slash, no
    trailing one). ``ConfigError`` for a value that is not a plain path."""
    raw = env.get(SERVER_ROOT_PATH, "").strip()
    path = "/" + raw.strip("/") if raw.strip("/") else ""
    if path and (not _PLAIN_PATH.fullmatch(path) or any(p in (".", "..") for p in path.split("/"))):
        raise ConfigError(f"environment variable {SERVER_ROOT_PATH}={raw!r} is not a plain path "
                          "such as /llm-gateway (letters, digits, '-', '_', '.', '~' between slashes)")
    return path


def is_set(env: Mapping[str, str], name: str) -> bool:
    """Whether a boolean variable is switched on (``1``, ``true``, ``yes``, ``on``; any case)."""
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")
