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
# The SDKs' endpoint overrides, service-specific first; guardrails call ApplyGuardrail there.
BEDROCK_RUNTIME_ENDPOINTS = ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "AWS_ENDPOINT_URL")


def read_environment() -> Mapping[str, str]:
    """A read-only snapshot of the environment as it is now."""
    return MappingProxyType(dict(os.environ))


def is_set(env: Mapping[str, str], name: str) -> bool:
    """Whether a boolean variable is switched on (``1``, ``true``, ``yes``, ``on``; any case)."""
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")
