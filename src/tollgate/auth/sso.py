"""OIDC single sign-on for the web UI: authorization code flow with PKCE (RFC 7636).

``begin`` makes the identity provider's authorization URL plus the ``state`` and PKCE verifier
the callback must see again (the edge keeps them in a short-lived signed cookie); ``finish``
exchanges the code at the token endpoint (with the verifier, and the client secret when there is
one) and reads the person's claims from the userinfo endpoint; ``identity_of`` maps those claims
to an ``SsoIdentity`` with LiteLLM's ``GENERIC_USER_*_ATTRIBUTE`` names and applies
``ALLOWED_EMAIL_DOMAINS``. The HTTP client is injected (the providers' pooled client in
production). Refusals never quote what the provider sent beyond the field names.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import orjson

from tollgate.auth.jwt.identity import claim
from tollgate.auth.principal import Role
from tollgate.auth.ui_settings import SsoSettings
from tollgate.errors import AuthenticationFailed, GatewayError, PermissionDenied

SSO_TIMEOUT = 10.0
_FROM_IDP = "Authentication Error: the identity provider's"
ROLE_NAMES: dict[str, Role] = {
    "proxy_admin": "proxy_admin", "litellm_proxy_admin": "proxy_admin",
    "proxy_admin_viewer": "proxy_admin_viewer", "litellm_proxy_admin_viewer": "proxy_admin_viewer",
    "internal_user": "internal_user", "internal_user_viewer": "internal_user_viewer",
}


class _Answer(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def body(self) -> bytes: ...


class SsoHttp(Protocol):
    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], *, timeout: float | None, provider: str
    ) -> _Answer: ...

    async def get(
        self, url: str, headers: Mapping[str, str], *, timeout: float | None, provider: str
    ) -> _Answer: ...


@dataclass(frozen=True, slots=True)
class SsoRequest:
    """Where to send the browser, and what the callback must match."""

    url: str
    state: str
    verifier: str


@dataclass(frozen=True, slots=True)
class SsoIdentity:
    user_id: str
    email: str | None
    role: Role | None  # from the role claim, when it names one of the four roles
    groups: tuple[str, ...]


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def begin(settings: SsoSettings, redirect_uri: str) -> SsoRequest:
    state = secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)  # 64 characters, inside RFC 7636's 43..128
    query = urlencode({
        "response_type": "code", "client_id": settings.client_id, "redirect_uri": redirect_uri,
        "scope": settings.scope, "state": state, "code_challenge": _challenge(verifier),
        "code_challenge_method": "S256",
    })
    joiner = "&" if "?" in settings.authorization_endpoint else "?"
    return SsoRequest(f"{settings.authorization_endpoint}{joiner}{query}", state, verifier)


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise AuthenticationFailed(f"{_FROM_IDP} {what} is not JSON.") from None
    if not isinstance(doc, dict):
        raise AuthenticationFailed(f"{_FROM_IDP} {what} is not an object.")
    return doc


async def finish(
    settings: SsoSettings, http: SsoHttp, *, code: str, verifier: str, redirect_uri: str
) -> dict[str, Any]:
    """The person's claims (userinfo), after exchanging ``code``."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "client_id": settings.client_id, "code_verifier": verifier}
    if settings.client_secret:
        form["client_secret"] = settings.client_secret
    headers = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}
    try:
        answer = await http.post(settings.token_endpoint, urlencode(form).encode(), headers,
                                 timeout=SSO_TIMEOUT, provider="sso")
    except GatewayError:
        raise AuthenticationFailed("Authentication Error: the identity provider cannot be reached.") from None
    if answer.status != 200:
        raise AuthenticationFailed(
            f"Authentication Error: the identity provider refused the sign-in code ({answer.status})."
        )
    access_token = _json(answer.body, "token answer").get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise AuthenticationFailed("Authentication Error: the identity provider sent no access_token.")
    try:
        info = await http.get(settings.userinfo_endpoint,
                              {"authorization": f"Bearer {access_token}", "accept": "application/json"},
                              timeout=SSO_TIMEOUT, provider="sso")
    except GatewayError:
        raise AuthenticationFailed("Authentication Error: the identity provider cannot be reached.") from None
    if info.status != 200:
        raise AuthenticationFailed(f"Authentication Error: the userinfo endpoint answered {info.status}.")
    return _json(info.body, "userinfo answer")


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def identity_of(claims: Mapping[str, Any], settings: SsoSettings) -> SsoIdentity:
    email = _text(claim(claims, settings.email_attribute))
    user_id = _text(claim(claims, settings.user_id_attribute)) or email or _text(claims.get("sub"))
    if user_id is None:
        raise AuthenticationFailed(
            f"Authentication Error: the identity provider sent no '{settings.user_id_attribute}', "
            "email or sub claim to identify you."
        )
    if settings.allowed_email_domains:
        domain = email.rpartition("@")[2].lower() if email and "@" in email else None
        if domain not in settings.allowed_email_domains:
            raise PermissionDenied(
                "your email domain may not sign in here (ALLOWED_EMAIL_DOMAINS: "
                f"{', '.join(settings.allowed_email_domains)})"
            )
    raw_role = claim(claims, settings.role_attribute)
    roles = raw_role if isinstance(raw_role, list) else [raw_role]
    found = [ROLE_NAMES[r] for r in roles if isinstance(r, str) and r in ROLE_NAMES]
    rank = ("proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer")
    role = min(found, key=rank.index) if found else None
    groups_claim = claim(claims, settings.groups_attribute)
    if isinstance(groups_claim, str):
        groups: tuple[str, ...] = (groups_claim,)
    elif isinstance(groups_claim, list):
        groups = tuple(dict.fromkeys(g for g in groups_claim if isinstance(g, str) and g))
    else:
        groups = ()
    return SsoIdentity(user_id, email, role, groups)


__all__ = ["SsoHttp", "SsoIdentity", "SsoRequest", "begin", "finish", "identity_of"]
