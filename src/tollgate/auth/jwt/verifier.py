"""OAuth 2.0 / OIDC bearer JWTs: verify the token, derive an ``Identity``, resolve it to a ``Principal``.

``looks_like_jwt`` (defined in the package, which must not import PyJWT) decides which
authenticator a bearer credential goes to (``sk-`` keys never
look like one). ``JwtVerifier`` checks signature (keys from the issuer's JWKS only; ``jku``/``x5u``
ignored), algorithm allow-list (``none`` never; HMAC only if configured *and* the JWKS holds an
``oct`` key, so an RSA public key can never serve as an HMAC secret), ``iss``, ``aud``, ``exp``,
``nbf``, ``iat`` with leeway, and required scopes. ``JwtAuthenticator`` caches the resolved
principal per token (keyed by the token's SHA-256, never the token) until the token expires, so a
repeat request costs a hash, a dict lookup and two comparisons. Failures raise
``AuthenticationFailed`` (401) or ``PermissionDenied`` (403) with a reason that quotes nothing
from the token.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from tollgate.auth.jwt import looks_like_jwt
from tollgate.auth.jwt.identity import (
    Identity,
    IdentityResolver,
    StaticIdentityResolver,
    identity_from_claims,
)
from tollgate.auth.jwt.jwks import Fetch, JwksCache
from tollgate.auth.jwt.settings import IssuerSettings, JwtSettings
from tollgate.auth.principal import Principal
from tollgate.errors import AuthenticationFailed, PermissionDenied

__all__ = [
    "Identity",
    "IdentityResolver",
    "JwtAuthenticator",
    "JwtVerifier",
    "StaticIdentityResolver",
    "build_jwt_authenticator",
    "looks_like_jwt",
]

_PREFIX = "Authentication Error: "
_UNTRUSTED = _PREFIX + "the JWT's issuer is not trusted by this proxy."


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class JwtVerifier:
    """``await verify(token) -> Identity``; verified identities cached by token SHA-256 until exp."""

    def __init__(self, settings: JwtSettings, jwks: JwksCache, *, now: Callable[[], float] = time.time):
        self.settings = settings
        self._jwks = jwks
        self._now = now
        self._by_issuer = {i.issuer: i for i in settings.issuers if i.issuer is not None}
        self._unpinned = next((i for i in settings.issuers if i.issuer is None), None)
        self._algorithms = frozenset(a for a in settings.algorithms if a.lower() != "none")
        self._cache: OrderedDict[str, Identity] = OrderedDict()

    async def verify(self, token: str, digest: str | None = None) -> Identity:
        digest = digest or token_digest(token)
        cached = self._cache.get(digest)
        if cached is not None and cached.expires_at + self.settings.leeway > self._now():
            return cached
        identity = await self._verify(token)
        self._cache[digest] = identity
        self._cache.move_to_end(digest)
        while len(self._cache) > self.settings.token_cache_size:
            self._cache.popitem(last=False)
        return identity

    async def _verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthenticationFailed(_PREFIX + "the bearer token is not a well-formed JWT.") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise AuthenticationFailed(_PREFIX + "the JWT's signing algorithm is not allowed.")
        issuer = self._issuer_for(unverified.get("iss"))
        urls = issuer.jwks_urls
        if not urls:
            assert issuer.issuer is not None  # settings guarantee unpinned issuers name key URLs
            urls = (await self._jwks.jwks_uri(issuer.issuer),)
        kid = header.get("kid")
        candidates = await self._jwks.keys_for(urls, kid if isinstance(kid, str) else None)
        if not candidates:
            raise AuthenticationFailed(_PREFIX + "the JWT's signing key is not published by its issuer.")
        claims = self._decode(token, alg, issuer, candidates)
        self._check_audience(claims, issuer)
        identity = identity_from_claims(claims, self.settings, issuer.fields)
        missing = [s for s in issuer.required_scopes if s not in identity.scopes]
        if missing:
            raise PermissionDenied(f"the token lacks the required scope(s): {', '.join(missing)}.")
        domain = self.settings.user_allowed_email_domain
        if domain and not identity.client_credentials and (
            identity.user_email is None or not identity.user_email.lower().endswith("@" + domain.lower())
        ):
            raise PermissionDenied(f"only users with an @{domain} email address may use this proxy.")
        return identity

    def _issuer_for(self, iss: object) -> IssuerSettings:
        found = self._by_issuer.get(iss) if isinstance(iss, str) else None
        if found is not None:
            return found
        if self._unpinned is not None:
            return self._unpinned
        raise AuthenticationFailed(_UNTRUSTED)

    def _decode(
        self, token: str, alg: str, issuer: IssuerSettings, candidates: list[dict[str, Any]]
    ) -> dict[str, Any]:
        options: jwt.types.Options = {"require": list(self.settings.required_claims), "verify_aud": False}
        for jwk in candidates:
            if jwk.get("alg") not in (None, alg):
                continue  # the issuer bound this key to another algorithm
            try:
                # Binding the key to the header's alg fails for mismatched key types (RSA key + HS256).
                key = jwt.PyJWK(jwk, alg)
            except jwt.PyJWTError:
                continue
            try:
                return jwt.decode(
                    token, key=key, algorithms=[alg], issuer=issuer.issuer,
                    leeway=self.settings.leeway, options=options,
                )
            except jwt.InvalidSignatureError:
                continue
            except jwt.ExpiredSignatureError:
                raise AuthenticationFailed(_PREFIX + "the JWT has expired.") from None
            except jwt.ImmatureSignatureError:
                raise AuthenticationFailed(_PREFIX + "the JWT is not valid yet (nbf/iat).") from None
            except jwt.InvalidIssuerError:
                raise AuthenticationFailed(_UNTRUSTED) from None
            except jwt.MissingRequiredClaimError as exc:
                raise AuthenticationFailed(_PREFIX + f"the JWT lacks the {exc.claim!r} claim.") from None
            except jwt.PyJWTError:
                raise AuthenticationFailed(_PREFIX + "the JWT is invalid.") from None
        raise AuthenticationFailed(_PREFIX + "the JWT's signature does not verify.")

    @staticmethod
    def _check_audience(claims: Mapping[str, Any], issuer: IssuerSettings) -> None:
        if not issuer.audiences:
            return
        aud = claims.get("aud")
        if aud is None:
            # Cognito access tokens carry no aud; their client_id is the audience.
            aud = claims.get("client_id")
        values = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(v, str) and v in issuer.audiences for v in values):
            raise AuthenticationFailed(_PREFIX + "the JWT was issued for another audience.")


@dataclass(frozen=True, slots=True)
class _Cached:
    principal: Principal
    expires_at: float  # wall clock: token exp + leeway
    fresh_until: float  # monotonic: re-resolve after this (store edits show up)


class JwtAuthenticator:
    """``await authenticate(token) -> Principal`` for bearer JWTs (route only ``looks_like_jwt`` here)."""

    def __init__(
        self,
        verifier: JwtVerifier,
        resolver: IdentityResolver,
        *,
        principal_ttl: float | None = None,
        cache_size: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
    ) -> None:
        settings = verifier.settings
        self._verifier = verifier
        self._resolver = resolver
        self._ttl = settings.principal_cache_ttl if principal_ttl is None else principal_ttl
        self._size = settings.token_cache_size if cache_size is None else cache_size
        self._leeway = settings.leeway
        self._clock = clock
        self._now = now
        self._cache: OrderedDict[str, _Cached] = OrderedDict()

    async def authenticate(self, token: str) -> Principal:
        digest = token_digest(token)
        hit = self._cache.get(digest)
        if hit is not None and hit.expires_at > self._now() and hit.fresh_until > self._clock():
            return hit.principal
        identity = await self._verifier.verify(token, digest)
        principal = await self._resolver.resolve(identity)
        entry = _Cached(principal, identity.expires_at + self._leeway, self._clock() + self._ttl)
        self._cache[digest] = entry
        self._cache.move_to_end(digest)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return principal

    def invalidate_all(self) -> None:
        """Forget resolved principals (after admin edits); verified signatures stay cached."""
        self._cache.clear()


def build_jwt_authenticator(
    settings: JwtSettings,
    fetch: Fetch,
    resolver: IdentityResolver | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], float] = time.time,
) -> JwtAuthenticator:
    """The usual wiring: one ``JwksCache`` and ``JwtVerifier`` per process."""
    jwks = JwksCache(
        fetch,
        ttl=settings.public_key_ttl,
        min_refresh_interval=settings.jwks_min_refresh_interval,
        allow_insecure_http=settings.allow_insecure_http,
        clock=clock,
    )
    verifier = JwtVerifier(settings, jwks, now=now)
    return JwtAuthenticator(verifier, resolver or StaticIdentityResolver(settings), clock=clock, now=now)
