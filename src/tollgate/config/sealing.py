"""Credentials of database-stored deployments, encrypted at rest (LiteLLM's ``LITELLM_SALT_KEY``).

``/model/new`` bodies carry upstream credentials (``api_key``, ``aws_secret_access_key``,
``aws_session_token``, headers, …). Every ``litellm_params`` value that ``config.redaction`` would
mask — anything but the known-harmless names — is stored sealed: a Fernet token (AES-128-CBC with
an HMAC-SHA256, from ``cryptography``) behind the ``sealed:v1:`` marker; strings inside a mapping
(``extra_headers``) are sealed one by one. Numbers and booleans stay as they are.

The key is derived (HKDF-SHA256) from ``LITELLM_SALT_KEY`` when it is set, else from the master
key, as LiteLLM chooses its key. Values without the marker are plaintext rows written before this
existed (or while neither key was set): they load as they are and are sealed at the next start or
write. A sealed value that does not open with the configured key means the key changed after the
model was added; that is refused with ``ConfigError``, never passed upstream as garbage.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tollgate.config.environment import LITELLM_SALT_KEY
from tollgate.config.redaction import SHOWN_PARAMS
from tollgate.errors import ConfigError

MARKER = "sealed:v1:"
_INFO = b"tollgate deployment credentials v1"  # binds the derived key to this one use


def is_secret(name: str) -> bool:
    """Whether a ``litellm_params`` value is stored sealed: all but the names shown in the clear."""
    return name not in SHOWN_PARAMS


@dataclass(frozen=True, slots=True)
class Sealer:
    """Seals and opens the secret ``litellm_params`` of one deployment. ``source`` names the key it
    was derived from (for messages); ``None`` means no key is configured: values are stored as
    given, and sealed ones cannot be opened."""

    fernet: Fernet | None
    source: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str], master_key: str | None) -> Sealer:
        return cls.from_keys(env.get(LITELLM_SALT_KEY), master_key)

    @classmethod
    def from_keys(cls, salt_key: str | None, master_key: str | None) -> Sealer:
        """The salt key when set, else the master key (LiteLLM's order); neither: no sealing."""
        if salt_key is not None and not salt_key.strip():
            raise ConfigError("LITELLM_SALT_KEY is set but empty: set it to a long random secret, or "
                              "unset it (the master key then encrypts stored model credentials)")
        secret, source = (salt_key, "LITELLM_SALT_KEY") if salt_key else (master_key, "the master key")
        if not secret:
            return cls(None, None)
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
        return cls(Fernet(base64.urlsafe_b64encode(key)), source)

    def seal(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``params`` with every secret value sealed (values already sealed are kept)."""
        return {name: self._seal(value) if is_secret(name) else value for name, value in params.items()}

    def open(self, params: Mapping[str, Any], where: str) -> dict[str, Any]:
        """``params`` with every sealed value opened; ``ConfigError`` naming ``where`` if one does
        not open with this key."""
        return {name: self._open(value, f"{where}.{name}") for name, value in params.items()}

    def has_plaintext(self, params: Mapping[str, Any]) -> bool:
        """Whether sealing would change ``params`` (a secret still in the clear, and a key to seal with)."""
        return self.fernet is not None and any(
            _plain(value) for name, value in params.items() if is_secret(name))

    def _seal(self, value: Any) -> Any:
        if self.fernet is None:
            return value
        if isinstance(value, str):
            if value.startswith(MARKER):
                return value
            return MARKER + self.fernet.encrypt(value.encode()).decode()
        if isinstance(value, Mapping):
            return {str(k): self._seal(v) for k, v in value.items()}
        return value

    def _open(self, value: Any, where: str) -> Any:
        if isinstance(value, Mapping):
            return {str(k): self._open(v, f"{where}.{k}") for k, v in value.items()}
        if not isinstance(value, str) or not value.startswith(MARKER):
            return value
        if self.fernet is None:
            raise ConfigError(f"{where} is encrypted, but neither LITELLM_SALT_KEY nor a master key is set "
                              "to decrypt it: set the key it was stored with")
        try:
            return self.fernet.decrypt(value[len(MARKER):].encode()).decode()
        except InvalidToken:
            raise ConfigError(f"{where} cannot be decrypted with {self.source}: it was stored with another "
                              "key (LITELLM_SALT_KEY or the master key changed?); set the key it was stored "
                              "with (docs/security.md)") from None


def _plain(value: Any) -> bool:
    if isinstance(value, str):
        return not value.startswith(MARKER)
    if isinstance(value, Mapping):
        return any(_plain(v) for v in value.values())
    return False


NO_SEALING = Sealer(None, None)
