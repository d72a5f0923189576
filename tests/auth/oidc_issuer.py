"""A tiny OIDC issuer for tests: discovery document + JWKS over loopback HTTP, and a token minter.

Keys are generated here with ``cryptography``; tokens are minted with PyJWT. ``rotate`` swaps the
signing key the way a real issuer does, and ``jwks_hits`` counts how often the JWKS was fetched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import run_app_in_thread

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class LocalIssuer:
    """Serves ``{url}/.well-known/openid-configuration`` and ``{url}/jwks``."""

    def __init__(self) -> None:
        self.url = ""  # set once serving
        self.keys: dict[str, PrivateKey] = {}
        self.cache_control: str | None = "max-age=300"
        self.jwks_hits = 0
        self.add_key("key-1")

    def add_key(self, kid: str, key: PrivateKey | None = None) -> PrivateKey:
        self.keys[kid] = key or new_rsa()
        return self.keys[kid]

    def rotate(self, new_kid: str) -> None:
        """Publish only a new key, as an issuer does after rotation."""
        self.keys = {}
        self.add_key(new_kid)

    def public_pem(self, kid: str = "key-1") -> bytes:
        return self.keys[kid].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, key in self.keys.items():
            if isinstance(key, rsa.RSAPrivateKey):
                jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            else:
                jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
            out.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": out}

    def claims(self, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        base: dict[str, Any] = {"iss": self.url, "aud": "tollgate", "iat": now, "exp": now + 600}
        base.update(extra)
        return {k: v for k, v in base.items() if v is not None}

    def mint(
        self, claims: Mapping[str, Any], *, kid: str = "key-1", alg: str | None = None,
        headers: Mapping[str, Any] | None = None, key: PrivateKey | None = None,
    ) -> str:
        signing = key or self.keys[kid]
        algorithm = alg or ("RS256" if isinstance(signing, rsa.RSAPrivateKey) else "ES256")
        return jwt.encode(dict(claims), signing, algorithm=algorithm, headers={"kid": kid, **(headers or {})})

    def app(self) -> Starlette:
        async def discovery(request: Request) -> JSONResponse:
            return JSONResponse({"issuer": self.url, "jwks_uri": f"{self.url}/jwks",
                                 "id_token_signing_alg_values_supported": ["RS256", "ES256"]})

        async def jwks(request: Request) -> JSONResponse:
            self.jwks_hits += 1
            headers = {"cache-control": self.cache_control} if self.cache_control else {}
            return JSONResponse(self.jwks(), headers=headers)

        return Starlette(routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
        ])


@contextmanager
def serve_issuer(issuer: LocalIssuer | None = None) -> Iterator[LocalIssuer]:
    issuer = issuer or LocalIssuer()
    with run_app_in_thread(issuer.app()) as url:
        issuer.url = url
        yield issuer


async def http_fetch(url: str) -> tuple[int, Mapping[str, str], bytes]:
    """What bootstrap's aiohttp-based fetch does, with httpx for the tests."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(url)
    return response.status_code, dict(response.headers), response.content


def unsigned_token(claims: Mapping[str, Any], header: Mapping[str, Any]) -> str:
    """A token with an empty signature (``alg: none``)."""
    return f"{b64url(json.dumps(dict(header)).encode())}.{b64url(json.dumps(dict(claims)).encode())}."


def hmac_token(claims: Mapping[str, Any], secret: bytes, kid: str) -> str:
    """HS256 over ``secret`` (the algorithm-confusion attack uses the issuer's public PEM)."""
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64url(json.dumps(dict(claims)).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"
