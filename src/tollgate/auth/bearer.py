"""How a caller presents a credential, and one authenticator for every credential: JWTs to the JWT
authenticator, everything else to keys.

``credential_from_headers`` finds the caller's credential in any of the places LiteLLM accepts it
(``Authorization: Bearer``, ``x-api-key``, ``api-key``, ``x-goog-api-key``, ``x-litellm-api-key``).

``CredentialAuthenticator`` is what the edge calls (``authenticate(credential)``) and what admin
services invalidate (``invalidate``/``invalidate_all``): an admin write drops both the cached
virtual-key principals and the cached JWT principals, so a team's new limits apply to both kinds
of caller at once. ``fetch_via`` adapts an HTTP client with ``get(url, headers, *, timeout,
provider)`` (the providers' pooled aiohttp client) to the ``fetch`` the JWKS cache expects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from tollgate.auth.jwt import looks_like_jwt
from tollgate.auth.jwt.jwks import Fetch, FetchResult, JwksUnavailable
from tollgate.auth.keys import KeyAuthenticator
from tollgate.auth.principal import Principal
from tollgate.errors import GatewayError

if TYPE_CHECKING:  # PyJWT and cryptography load only when JWT auth is enabled
    from tollgate.auth.jwt.verifier import JwtAuthenticator

JWKS_FETCH_TIMEOUT = 10.0




class CredentialAuthenticator:
    def __init__(self, keys: KeyAuthenticator, jwt: JwtAuthenticator | None = None) -> None:
        self._keys = keys
        self._jwt = jwt

    async def authenticate(self, credential: str | None) -> Principal:
        if self._jwt is not None and credential and looks_like_jwt(credential):
            return await self._jwt.authenticate(credential)
        return await self._keys.authenticate(credential)

    def invalidate(self, key_hash: str) -> None:
        self._keys.invalidate(key_hash)

    def invalidate_all(self) -> None:
        self._keys.invalidate_all()
        if self._jwt is not None:
            self._jwt.invalidate_all()


class _Answer(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def body(self) -> bytes: ...


class HttpGet(Protocol):
    async def get(
        self, url: str, headers: Mapping[str, str], *, timeout: float | None, provider: str
    ) -> _Answer: ...


def fetch_via(http: HttpGet, timeout: float = JWKS_FETCH_TIMEOUT) -> Fetch:
    """A ``fetch`` whose transport failures read as "keys unavailable" (the cache keeps old keys)."""

    async def fetch(url: str) -> FetchResult:
        try:
            answer = await http.get(url, {"accept": "application/json"}, timeout=timeout, provider="jwks")
        except GatewayError:
            raise JwksUnavailable("Authentication Error: the token issuer's keys are unavailable.") from None
        return answer.status, answer.headers, answer.body

    return fetch


__all__ = ["CredentialAuthenticator", "HttpGet", "fetch_via"]


CREDENTIAL_HEADERS = ("x-api-key", "api-key", "x-goog-api-key", "x-litellm-api-key")


def credential_from_headers(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        if not value and scheme:
            return scheme.strip()  # a bare key in Authorization, as some clients send
    for name in CREDENTIAL_HEADERS:
        found = headers.get(name)
        if found:
            return found.strip()
    return None


