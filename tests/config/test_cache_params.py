"""``litellm_settings.cache`` / ``cache_params`` parsed into typed config: LiteLLM's keys (and the
AWS guide's ``type: Redis``), defaults, wrong values refusing to start with the key path, and keys
not acted on reported."""

from __future__ import annotations

from typing import Any

import pytest

from tollgate.config import parse_config
from tollgate.config.cache import DEFAULT_TTL
from tollgate.errors import ConfigError


def parsed(params: dict[str, Any], cache: bool = True, env: dict[str, str] | None = None) -> Any:
    raw = {"model_list": [], "litellm_settings": {"cache": cache, "cache_params": params}}
    return parse_config(raw, env=env or {})


def test_litellm_keys_are_typed() -> None:
    config = parsed({
        "type": "Redis", "host": "os.environ/REDIS_HOST", "port": "6380", "password": "pw",
        "namespace": "ns", "ttl": 300, "mode": "default_off", "supported_call_types": ["acompletion"],
    }, env={"REDIS_HOST": "redis.internal"})
    params = config.litellm.cache_params
    assert config.litellm.cache is True
    assert (params.type, params.host, params.port, params.password) == ("redis", "redis.internal", 6380, "pw")
    assert (params.namespace, params.default_ttl, params.mode) == ("ns", 300, "default_off")
    assert params.chat and not params.embeddings
    assert config.warnings == ()


def test_defaults() -> None:
    params = parsed({}, cache=False).litellm.cache_params
    assert (params.type, params.mode, params.scope) == ("redis", "default_on", "tenant")
    assert params.chat and params.embeddings
    assert params.default_ttl == DEFAULT_TTL
    local = parsed({"type": "local", "default_in_memory_ttl": 60, "default_in_redis_ttl": 5})
    assert local.litellm.cache_params.default_ttl == 60


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"type": "s3"}, "litellm_settings.cache_params.type"),
        ({"mode": "sometimes"}, "litellm_settings.cache_params.mode"),
        ({"ttl": -1}, "litellm_settings.cache_params.ttl"),
        ({"port": "six"}, "litellm_settings.cache_params.port"),
        ({"scope": "everyone"}, "litellm_settings.cache_params.scope"),
    ],
)
def test_wrong_values_refuse_to_start_naming_the_key(params: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parsed(params)
    assert caught.value.message.startswith(path)


def test_keys_not_acted_on_are_reported() -> None:
    config = parsed({"similarity_threshold": 0.8, "supported_call_types": ["acompletion", "x"]})
    path = "litellm_settings.cache_params.similarity_threshold"
    assert f"config: unknown key '{path}' is ignored" in config.warnings
    assert any("supported_call_types[1] (x)" in w for w in config.warnings)
    # LiteLLM call types tollgate has no API for are harmless: nothing to cache, nothing to say.
    assert parsed({"supported_call_types": ["acompletion", "atranscription"]}).warnings == ()
