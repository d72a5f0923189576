"""A tiny OIDC issuer for tests: discovery document + JWKS over loopback HTTP, and a token minter.

Keys are generated here with ``cryptography``; tokens are minted with PyJWT. ``rotate`` swaps the
signing key the way a real issuer does, and ``jwks_hits`` counts how often the JWKS was fetched.

It also runs the authorization code flow with PKCE for SSO sign-in: ``/authorize`` approves at
once as ``login_as`` (the claims the next person signs in with) and redirects back with a code;
``/token`` checks the client, the redirect URI and the PKCE verifier before giving an access
token; ``/userinfo`` answers that token's claims. ``token_requests`` records what ``/token`` got.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
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
        self.client_id = "tollgate-ui"
        self.client_secret = "ui-secret"
        self.login_as: dict[str, Any] = {
            "sub": "u-1", "preferred_username": "alice", "email": "alice@example.com",
        }
        self._codes: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, dict[str, Any]] = {}
        self.token_requests: list[dict[str, str]] = []

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
            Route("/authorize", self._authorize),
            Route("/token", self._token, methods=["POST"]),
            Route("/userinfo", self._userinfo),
        ])

    async def _authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id or q.get("response_type") != "code":
            return JSONResponse({"error": "unauthorized_client"}, status_code=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request", "error_description": "PKCE required"}, 400)
        code = secrets.token_urlsafe(16)
        self._codes[code] = {"challenge": q["code_challenge"], "redirect_uri": q.get("redirect_uri"),
                             "claims": dict(self.login_as)}
        back = urlencode({"code": code, "state": q.get("state")})
        return RedirectResponse(f"{q.get('redirect_uri')}?{back}", status_code=302)

    async def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        self.token_requests.append(form)
        grant = self._codes.pop(form.get("code", ""), None)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        verifier = form.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE mismatch"}, 400)
        token = secrets.token_urlsafe(24)
        self._tokens[token] = grant["claims"]
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 300})

    async def _userinfo(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        claims = self._tokens.get(token)
        if claims is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(claims)


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
