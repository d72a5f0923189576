"""JWKS and OIDC discovery documents, fetched through an injected ``fetch`` and cached.

The auth package has no HTTP client: bootstrap passes ``fetch(url) -> (status, headers, body)``
built on the providers' aiohttp session. Key sets are cached for the response's
``Cache-Control: max-age`` (clamped) or the configured TTL; a token naming an unknown ``kid``
triggers a refetch, at most once per ``min_refresh_interval`` per URL, so a flood of made-up kids
cannot hammer the issuer. Keys only ever come from configured or discovered URLs — never from a
URL inside a token (``jku``/``x5u``). A failed refresh keeps serving the previous keys.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tollgate.auth.jwt.settings import check_jwks_url
from tollgate.errors import AuthenticationFailed, ConfigError

FetchResult = tuple[int, Mapping[str, str], bytes]
Fetch = Callable[[str], Awaitable[FetchResult]]

MAX_TTL = 86_400.0
_NO_DISCOVERY = "Authentication Error: the token issuer's discovery document is unavailable."
_WRONG_DISCOVERY = "Authentication Error: the issuer's discovery document names another issuer."
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*(\d+)", re.IGNORECASE)


class JwksUnavailable(AuthenticationFailed):
    """The issuer's keys could not be fetched or parsed (reported as 401, never retried here)."""


@dataclass(slots=True)
class _Entry:
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # kid ("" for none) -> JWK
    fresh_until: float = 0.0
    last_attempt: float | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def cache_ttl(headers: Mapping[str, str], default: float, floor: float) -> float:
    """Seconds to keep a response: ``max-age`` if given (``no-store``/``no-cache`` → ``floor``)."""
    value = next((v for k, v in headers.items() if k.lower() == "cache-control"), None)
    if value is None:
        return default
    lowered = value.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return floor
    match = _MAX_AGE.search(value)
    if match is None:
        return default
    return min(max(float(match.group(1)), floor), MAX_TTL)


class JwksCache:
    def __init__(
        self,
        fetch: Fetch,
        *,
        ttl: float = 600.0,
        min_refresh_interval: float = 30.0,
        allow_insecure_http: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._min_refresh = min_refresh_interval
        self._allow_http = allow_insecure_http
        self._clock = clock
        self._sets: dict[str, _Entry] = {}
        self._discovered: dict[str, tuple[str, float]] = {}  # issuer -> (jwks_uri, fresh_until)
        self._discovery_failed: dict[str, float] = {}
        self.fetches = 0  # network round trips made; exposed for metrics and tests

    async def keys_for(self, urls: tuple[str, ...], kid: str | None) -> list[dict[str, Any]]:
        """The JWKs that may have signed a token with ``kid`` (all keys when the token has none)."""
        found: list[dict[str, Any]] = []
        for url in urls:
            entry = self._sets.setdefault(url, _Entry())
            if entry.fresh_until <= self._clock():
                await self._refresh(url, entry, force=False)
            if kid is not None and kid not in entry.keys and self._may_refetch(entry):
                await self._refresh(url, entry, force=True)  # the issuer may have rotated its key
            if kid is None:
                found.extend(entry.keys.values())
            elif kid in entry.keys:
                found.append(entry.keys[kid])
        return found

    async def jwks_uri(self, issuer: str) -> str:
        """The issuer's ``jwks_uri`` from ``{issuer}/.well-known/openid-configuration``."""
        cached = self._discovered.get(issuer)
        now = self._clock()
        if cached is not None and cached[1] > now:
            return cached[0]
        failed = self._discovery_failed.get(issuer)
        if cached is None and failed is not None and now - failed < self._min_refresh:
            raise JwksUnavailable(_NO_DISCOVERY)
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            status, headers, body = await self._get(url)
            doc = orjson.loads(body) if status == 200 else None
        except (OSError, TimeoutError, orjson.JSONDecodeError, JwksUnavailable):
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("jwks_uri"), str):
            self._discovery_failed[issuer] = now
            if cached is not None:
                return cached[0]
            raise JwksUnavailable(_NO_DISCOVERY)
        if doc.get("issuer") != issuer:
            # OIDC Discovery §4.3: the document must name the issuer it was fetched for.
            raise JwksUnavailable(_WRONG_DISCOVERY)
        uri: str = doc["jwks_uri"]
        self._discovered[issuer] = (uri, now + cache_ttl(headers, self._ttl, self._min_refresh))
        return uri

    def _may_refetch(self, entry: _Entry) -> bool:
        return entry.last_attempt is None or self._clock() - entry.last_attempt >= self._min_refresh

    async def _refresh(self, url: str, entry: _Entry, *, force: bool) -> None:
        async with entry.lock:
            now = self._clock()
            # Another task may have refreshed while we waited for the lock.
            if not force and entry.fresh_until > now:
                return
            if entry.last_attempt is not None and now - entry.last_attempt < self._min_refresh:
                return
            entry.last_attempt = now
            try:
                status, headers, body = await self._get(url)
                keys = _parse_jwks(body) if status == 200 else None
            except (OSError, TimeoutError, JwksUnavailable):
                keys = None
            if keys is None:
                # Keep the previous keys; retry no sooner than the refresh interval.
                entry.fresh_until = now + self._min_refresh
                return
            entry.keys = keys
            entry.fresh_until = now + cache_ttl(headers, self._ttl, self._min_refresh)

    async def _get(self, url: str) -> FetchResult:
        try:
            check_jwks_url(url, self._allow_http, "JWKS URL")
        except ConfigError:
            raise JwksUnavailable(
                "Authentication Error: the issuer's key URL is not https:// and is not allowed."
            ) from None
        self.fetches += 1
        return await self._fetch(url)


def _parse_jwks(body: bytes) -> dict[str, dict[str, Any]] | None:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        return None
    keys: dict[str, dict[str, Any]] = {}
    for jwk in doc["keys"]:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kty"), str):
            continue
        if jwk.get("use") not in (None, "sig"):
            continue  # encryption keys never verify signatures
        kid = jwk.get("kid")
        keys[kid if isinstance(kid, str) else f"#{len(keys)}"] = jwk
    return keys
