"""SSO: the PKCE authorization request, claims → identity (LiteLLM's attribute names, allowed
email domains, roles, groups), and the user an SSO sign-in becomes."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from tollgate.auth.sessions import SessionCodec, signing_key
from tollgate.auth.sso import SsoIdentity, begin, identity_of
from tollgate.auth.ui_identity import SessionPrincipals, upsert_sso_user
from tollgate.auth.ui_settings import SsoSettings, sso_settings, ui_settings
from tollgate.errors import AuthenticationFailed, ConfigError, PermissionDenied
from tollgate.store import open_store
from tollgate.store.records import Team, User

ENV = {
    "GENERIC_CLIENT_ID": "cid", "GENERIC_CLIENT_SECRET": "shh",
    "GENERIC_AUTHORIZATION_ENDPOINT": "https://idp.test/authorize",
    "GENERIC_TOKEN_ENDPOINT": "https://idp.test/token", "GENERIC_USERINFO_ENDPOINT": "https://idp.test/me",
    "ALLOWED_EMAIL_DOMAINS": "example.com, @corp.test",
}
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def settings(**env: str) -> SsoSettings:
    found = sso_settings({**ENV, **env})
    assert found is not None
    return found


def test_settings_from_litellm_variables() -> None:
    s = settings()
    assert (s.client_id, s.client_secret, s.scope) == ("cid", "shh", "openid email profile")
    assert s.allowed_email_domains == ("example.com", "corp.test")
    assert sso_settings({}) is None
    with pytest.raises(ConfigError, match="GENERIC_TOKEN_ENDPOINT"):
        sso_settings({k: v for k, v in ENV.items() if k != "GENERIC_TOKEN_ENDPOINT"})
    ui = ui_settings({}, "sk-master", None)
    assert (ui.username, ui.password, ui.open_access) == ("admin", "sk-master", False)
    assert ui_settings({"UI_PASSWORD": "pw", "UI_USERNAME": "root"}, "sk-master", None).password == "pw"
    with pytest.raises(ConfigError, match="UI_SESSION_IDLE_SECONDS"):
        ui_settings({"UI_SESSION_IDLE_SECONDS": "soon"}, None, None)


def test_authorization_request_uses_pkce_s256() -> None:
    started = begin(settings(), "https://gw.test/sso/callback")
    query = {k: v[0] for k, v in parse_qs(urlsplit(started.url).query).items()}
    assert started.url.startswith("https://idp.test/authorize?")
    assert query["code_challenge_method"] == "S256"
    digest = hashlib.sha256(started.verifier.encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert (query["state"], query["client_id"], query["redirect_uri"]) == (
        started.state, "cid", "https://gw.test/sso/callback")
    assert 43 <= len(started.verifier) <= 128
    assert begin(settings(), "x").state != started.state


def test_identity_from_claims() -> None:
    claims = {"sub": "123", "preferred_username": "alice", "email": "alice@example.com",
              "role": ["internal_user", "proxy_admin_viewer"], "groups": ["eng", "eng", 7]}
    assert identity_of(claims, settings()) == SsoIdentity("alice", "alice@example.com", "proxy_admin_viewer",
                                                          ("eng",))
    custom = settings(GENERIC_USER_ID_ATTRIBUTE="sub", GENERIC_USER_ROLE_ATTRIBUTE="app.role")
    assert identity_of({"sub": "9", "email": "a@corp.test", "app": {"role": "proxy_admin"}}, custom) == \
        SsoIdentity("9", "a@corp.test", "proxy_admin", ())
    # no preferred_username: the email, then sub, identify the person
    assert identity_of({"sub": "7", "email": "b@example.com"}, settings()).user_id == "b@example.com"


def test_email_domain_refusal() -> None:
    with pytest.raises(PermissionDenied, match="email domain"):
        identity_of({"preferred_username": "m", "email": "m@evil.test"}, settings())
    with pytest.raises(PermissionDenied):
        identity_of({"preferred_username": "m"}, settings())
    with pytest.raises(AuthenticationFailed, match="identify you"):
        identity_of({"name": "nobody"}, settings(ALLOWED_EMAIL_DOMAINS=""))


async def test_upsert_creates_updates_and_joins_teams() -> None:
    store = open_store("memory")
    async with store.transaction() as tx:
        await tx.teams.insert(Team("eng"))
    identity = SsoIdentity("alice", "alice@example.com", None, ("eng", "unknown"))
    user = await upsert_sso_user(store, identity, proxy_admin_id=None, team_id_upsert=False, now=lambda: NOW)
    assert (user.id, user.role, user.email) == ("alice", "internal_user", "alice@example.com")
    async with store.transaction() as tx:
        assert [m.team_id for m in await tx.memberships.find({"user_id": "alice"})] == ["eng"]
        assert await tx.teams.get("unknown") is None
    promoted = SsoIdentity("alice", "alice@example.com", "proxy_admin_viewer", ("unknown",))
    user = await upsert_sso_user(store, promoted, proxy_admin_id=None, team_id_upsert=True, now=lambda: NOW)
    assert user.role == "proxy_admin_viewer"
    async with store.transaction() as tx:
        assert await tx.teams.get("unknown") is not None
        assert len(await tx.memberships.find({"user_id": "alice"})) == 2
    boss = await upsert_sso_user(store, SsoIdentity("root", None, None, ()), proxy_admin_id="root",
                                 team_id_upsert=False, now=lambda: NOW)
    assert boss.role == "proxy_admin"


async def test_session_principal_follows_the_user_record() -> None:
    store = open_store("memory")
    async with store.transaction() as tx:
        await tx.users.insert(User("alice", "alice@example.com", role="internal_user_viewer"))
    codec = SessionCodec(signing_key("s", None))
    principals = SessionPrincipals(store, proxy_admin_id="root")
    session = codec.issue("sso", "alice@example.com", "alice", NOW.timestamp())
    principal = await principals.principal(session)
    assert (principal.kind, principal.role, principal.user_id) == ("session", "internal_user_viewer", "alice")
    assert [e.kind for e in principal.entities] == ["user"]
    admin = await principals.principal(codec.issue("password", "admin", "root", NOW.timestamp()))
    assert admin.is_admin and admin.user_id == "root"
    async with store.transaction() as tx:
        await tx.users.delete(["alice"])
    with pytest.raises(AuthenticationFailed, match="no longer exists"):
        await principals.principal(session)
