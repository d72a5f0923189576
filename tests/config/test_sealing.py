"""config.sealing: which litellm_params are encrypted, the key chosen, and what a wrong key does."""

from __future__ import annotations

import pytest

from tollgate.config.sealing import MARKER, NO_SEALING, Sealer
from tollgate.errors import ConfigError

PARAMS = {
    "model": "bedrock/converse/us.amazon.nova-micro-v1:0", "aws_region_name": "us-east-1",
    "aws_secret_access_key": "secret-one", "aws_session_token": "token-two", "api_key": "sk-three",
    "api_base": "https://user:pw@example.com/v1", "extra_headers": {"x-api-token": "four"},
    "rpm": 10, "stream": True, "timeout": 30,
}


def test_secrets_are_sealed_and_open_again() -> None:
    sealer = Sealer.from_keys("a-salt-key", "sk-master")
    sealed = sealer.seal(PARAMS)
    for name in ("aws_secret_access_key", "aws_session_token", "api_key", "api_base"):
        assert sealed[name].startswith(MARKER) and PARAMS[name] not in sealed[name]
    assert sealed["extra_headers"]["x-api-token"].startswith(MARKER)
    for name in ("model", "aws_region_name", "rpm", "timeout", "stream"):
        assert sealed[name] == PARAMS[name]
    assert sealer.open(sealed, "m") == PARAMS
    assert sealer.seal(sealed) == sealed  # sealing twice changes nothing
    assert sealer.has_plaintext(PARAMS) and not sealer.has_plaintext(sealed)


def test_the_salt_key_wins_over_the_master_key() -> None:
    by_salt = Sealer.from_keys("a-salt-key", "sk-master").seal(PARAMS)
    assert Sealer.from_keys("a-salt-key", "sk-other-master").open(by_salt, "m") == PARAMS
    by_master = Sealer.from_keys(None, "sk-master").seal(PARAMS)
    assert Sealer.from_env({}, "sk-master").open(by_master, "m") == PARAMS
    with pytest.raises(ConfigError, match=r"^m\.api_key cannot be decrypted with the master key"):
        Sealer.from_keys(None, "sk-other-master").open({"api_key": by_master["api_key"]}, "m")
    with pytest.raises(ConfigError, match="cannot be decrypted with LITELLM_SALT_KEY"):
        Sealer.from_keys("another-salt", "sk-master").open(by_salt, "m")


def test_plaintext_loads_and_without_any_key_nothing_is_sealed() -> None:
    assert Sealer.from_keys("a-salt-key", None).open(PARAMS, "m") == PARAMS
    assert Sealer.from_keys(None, None) == NO_SEALING
    assert NO_SEALING.seal(PARAMS) == PARAMS and not NO_SEALING.has_plaintext(PARAMS)
    sealed = Sealer.from_keys("a-salt-key", None).seal(PARAMS)
    with pytest.raises(ConfigError, match="neither LITELLM_SALT_KEY nor a master key is set"):
        NO_SEALING.open(sealed, "m")


@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_salt_key_is_refused(empty: str) -> None:
    with pytest.raises(ConfigError, match="LITELLM_SALT_KEY is set but empty"):
        Sealer.from_env({"LITELLM_SALT_KEY": empty}, "sk-master")
