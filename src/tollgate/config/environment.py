"""The process environment, read in one place.

``read_environment()`` is the only reader of ``os.environ`` in tollgate: the CLI and the
composition root call it once and hand the snapshot (or values taken from it) to whatever needs
them, so no module deep in the pipeline looks at the environment behind its caller's back.
(botocore reads the AWS variables of its own credential chain itself; that is the library's
documented contract, not ours.)

tollgate's own variables, besides LiteLLM's that the config may reference as ``os.environ/VAR``:
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType

CONFIG = "TOLLGATE_CONFIG"  # the config file a worker process loads (set by ``tollgate serve``)
REDIS_PREFIX = "TOLLGATE_REDIS_PREFIX"  # prefix of every Redis key and channel (default tollgate)
SPEND_SPILL_DIR = "TOLLGATE_SPEND_SPILL_DIR"  # where unwritten spend rows are spilled
PROMETHEUS_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's multi-process mode
DATABASE_URL = "DATABASE_URL"  # LiteLLM's: the database when general_settings has none
REDIS_URL = "REDIS_URL"  # also REDIS_HOST / REDIS_PORT / REDIS_PASSWORD, as LiteLLM
AWS_REGION_NAMES = ("AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION")  # LiteLLM's, then the SDKs'
DISABLE_SCHEMA_UPDATE = "DISABLE_SCHEMA_UPDATE"  # LiteLLM's: `serve` must not migrate the database
# LiteLLM's: database connections per process when general_settings has no database_connection_pool_limit
DATABASE_CONNECTION_POOL_LIMIT = "DATABASE_CONNECTION_POOL_LIMIT"
SERVER_ROOT_PATH = "SERVER_ROOT_PATH"  # LiteLLM's: the path prefix every route is served under
LITELLM_SALT_KEY = "LITELLM_SALT_KEY"  # LiteLLM's: encrypts stored model credentials (else the master key)


def read_environment() -> Mapping[str, str]:
    """A read-only snapshot of the environment as it is now."""
    return MappingProxyType(dict(os.environ))


def is_set(env: Mapping[str, str], name: str) -> bool:
    """Whether a boolean variable is switched on (``1``, ``true``, ``yes``, ``on``; any case)."""
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")
