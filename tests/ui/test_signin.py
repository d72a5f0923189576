"""Sign-in in a real browser: password (right and wrong), sign-out, SSO through a loopback OIDC
issuer (code + PKCE), roles deciding what a person sees, and CSRF refusals."""

from __future__ import annotations

from typing import Any

import httpx

from tests.auth.oidc_issuer import LocalIssuer
from tests.e2e.admin_env import sqlite_database
from tests.e2e.servers import gateway
from tests.ui.browser import Watched, open_page
from tests.ui.conftest import MASTER, sign_in


def test_wrong_password_is_refused_visibly(watched: Watched) -> None:
    page = watched.page
    page.goto("/ui/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    assert "Wrong username or password" in page.get_by_role("alert").inner_text()
    assert page.get_by_role("navigation", name="Main").get_by_role("link").count() == 0
    assert watched.foreign == []


def test_right_password_signs_in_then_out(watched: Watched) -> None:
    sign_in(watched)
    page = watched.page
    nav = page.get_by_role("navigation", name="Main")
    for name in ("Keys", "Teams", "Users", "Organizations", "Models", "Usage", "Logs", "Playground", "Audit"):
        assert nav.get_by_role("link", name=name, exact=True).is_visible(), name
    cookie = next(c for c in page.context.cookies() if c["name"] == "tollgate_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in").wait_for()
    assert not [c for c in page.context.cookies() if c["name"] == "tollgate_session"]
    assert watched.errors == [] and watched.foreign == []


def _sso(w: Watched, issuer: LocalIssuer, claims: dict[str, Any]) -> None:
    issuer.login_as = claims
    w.page.goto("/ui/")
    w.page.get_by_role("link", name="Sign in with SSO").click()


def test_sso_internal_user_sees_only_their_own(
    browser: Any, base: str, issuer: LocalIssuer, admin_api: httpx.Client
) -> None:
    admin_api.post("/user/new", json={"user_id": "alice", "user_email": "alice@example.com",
                                      "user_role": "internal_user"}).raise_for_status()
    admin_api.post("/key/generate", json={"user_id": "alice", "key_alias": "alice-key"}).raise_for_status()
    admin_api.post("/key/generate", json={"user_id": "bob", "key_alias": "bob-key"}).raise_for_status()
    w = open_page(browser, base)
    try:
        _sso(w, issuer, {"sub": "s-alice", "preferred_username": "alice", "email": "alice@example.com"})
        page = w.page
        page.get_by_role("heading", name="Keys", exact=True).wait_for()
        page.get_by_role("cell", name="alice-key", exact=True).wait_for()
        assert page.get_by_role("cell", name="bob-key", exact=True).count() == 0
        assert "alice@example.com · internal user" in page.locator("#who").inner_text()
        nav = page.get_by_role("navigation", name="Main")
        assert nav.get_by_role("link", name="Keys").is_visible()
        for hidden in ("Users", "Teams", "Organizations", "Audit"):
            assert nav.get_by_role("link", name=hidden, exact=True).count() == 0, hidden
        page.goto("/ui/users")  # typing the URL
        assert "may not open this page" in page.get_by_role("alert").inner_text()
        answer = page.request.get("/ui/api/users")
        assert answer.status == 403
        assert page.request.get("/audit/logs").status == 403
        assert w.errors == []
        # the code was exchanged with the PKCE verifier and the client secret
        last = issuer.token_requests[-1]
        assert last["code_verifier"] and last["client_secret"] == issuer.client_secret
    finally:
        w.close()


def test_sso_creates_the_user_and_proxy_admin_id_is_admin(
    browser: Any, base: str, issuer: LocalIssuer, admin_api: httpx.Client
) -> None:
    w = open_page(browser, base)
    try:
        _sso(w, issuer, {"sub": "s-carol", "preferred_username": "carol", "email": "carol@example.com"})
        w.page.get_by_role("heading", name="Keys", exact=True).wait_for()
        user = admin_api.get("/user/info", params={"user_id": "carol"}).json()["user_info"]
        assert user["user_email"] == "carol@example.com" and user["user_role"] == "internal_user"
        w.page.get_by_role("button", name="Sign out").click()
        _sso(w, issuer, {"sub": "s-root", "preferred_username": "root-admin", "email": "root@example.com"})
        w.page.get_by_role("link", name="Audit").wait_for()
        assert "proxy admin" in w.page.locator("#who").inner_text()
    finally:
        w.close()


def test_sso_refuses_an_email_domain_not_allowed(browser: Any, base: str, issuer: LocalIssuer) -> None:
    w = open_page(browser, base)
    try:
        _sso(w, issuer, {"sub": "s-m", "preferred_username": "mallory", "email": "mallory@evil.test"})
        alert = w.page.get_by_role("alert")
        assert "email domain" in alert.inner_text()
        assert w.page.get_by_role("button", name="Sign in").is_visible()
    finally:
        w.close()


def test_csrf_refusals(watched: Watched, base: str) -> None:
    sign_in(watched)
    page = watched.page
    cookie = next(c for c in page.context.cookies() if c["name"] == "tollgate_session")
    jar = {"tollgate_session": cookie["value"]}
    with httpx.Client(base_url=base, cookies=jar, timeout=10) as client:
        csrf = client.get("/ui/auth/session").json()["csrf"]
        refused = client.post("/key/generate", json={"key_alias": "csrf-missing"})
        assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
        wrong = client.post("/key/generate", json={"key_alias": "csrf-wrong"},
                            headers={"x-csrf-token": "nope"})
        assert wrong.status_code == 403
        foreign = client.post("/key/generate", json={"key_alias": "csrf-origin"},
                              headers={"x-csrf-token": csrf, "origin": "https://evil.test"})
        assert foreign.status_code == 403
        accepted = client.post("/key/generate", json={"key_alias": "csrf-ok"}, headers={"x-csrf-token": csrf})
        assert accepted.status_code == 200, accepted.text
        # reads need no token; a Bearer caller never needs one
        assert client.get("/ui/api/keys").status_code == 200
    with httpx.Client(base_url=base, timeout=10) as client:
        bearer = {"authorization": f"Bearer {MASTER}"}
        assert client.post("/key/generate", json={}, headers=bearer).status_code == 200
        login = client.post("/ui/auth/login", json={"username": "admin", "password": MASTER})
        assert login.status_code == 403  # no login CSRF token
    # the page itself, forging a write without the token
    status = page.evaluate("""async () => (await fetch('/key/generate', {method: 'POST',
        headers: {'content-type': 'application/json'}, body: '{}'})).status""")
    assert status == 403


def test_repeated_wrong_passwords_are_slowed_down_and_cookies_are_secure_behind_https() -> None:
    """After ten wrong passwords from one address the form answers 429, even to the right one
    (its own gateway: the shared one must stay open to the other tests' sign-ins). Behind an
    https PROXY_BASE_URL every cookie the UI sets is Secure (sent back by hand: this is http)."""
    config = {"model_list": [], "general_settings": {"master_key": MASTER}}
    with sqlite_database() as url:
        config["general_settings"]["database_url"] = url
        env = {"PROXY_BASE_URL": "https://gateway.example"}
        with gateway(config, env=env) as running, httpx.Client(base_url=running, timeout=10) as client:
            signed_out = client.get("/ui/auth/session")
            csrf = signed_out.json()["login_csrf"]
            assert "secure" in signed_out.headers["set-cookie"].lower()
            headers = {"x-csrf-token": csrf, "cookie": f"tollgate_login_csrf={csrf}"}

            def login(password: str) -> httpx.Response:
                body = {"username": "admin", "password": password}
                return client.post("/ui/auth/login", json=body, headers=headers)

            signed_in = login(MASTER)
            assert signed_in.status_code == 200 and "tollgate_session=" in signed_in.headers["set-cookie"]
            assert "secure" in signed_in.headers["set-cookie"].lower()
            assert [login("wrong").status_code for _ in range(10)] == [401] * 10
            locked = login(MASTER)
            assert locked.status_code == 429 and "Too many wrong passwords" in locked.text
            assert "set-cookie" not in locked.headers
