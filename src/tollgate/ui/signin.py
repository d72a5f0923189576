"""Sign-in, sign-out and SSO for the web UI.

    GET  /ui/auth/session   who is signed in (and the CSRF token for writes); renews the cookie.
                            Signed out: a login CSRF token (double-submit cookie) for the form.
    POST /ui/auth/login     {"username", "password"} → session cookie; wrong → 401, visible refusal
    POST /ui/auth/logout    clears the cookie (a CSRF-checked write)
    GET  /sso/key/generate  LiteLLM's SSO entry point: redirect to the identity provider (PKCE)
    GET  /sso/callback      LiteLLM's redirect URI: code → userinfo → user → session → /ui/

Repeated wrong passwords from one client address are slowed down: after ``MAX_FAILURES`` in
``FAILURE_WINDOW`` seconds the form answers 429 until the window passes.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from tollgate.auth import sso
from tollgate.auth.principal import Principal
from tollgate.auth.sessions import CSRF_HEADER, LOGIN_CSRF_COOKIE, Session, csrf_ok
from tollgate.auth.ui_identity import upsert_sso_user
from tollgate.errors import GatewayError
from tollgate.store import GROUP_COLUMNS, Store
from tollgate.store.records import EntityPolicy
from tollgate.ui.gate import UiGate, cookie_path, public_path

log = logging.getLogger("tollgate.ui")
SSO_COOKIE = "tollgate_sso"
SSO_MAX_AGE = 600
MAX_FAILURES = 10
FAILURE_WINDOW = 300.0


def usage_groups() -> list[str]:
    """The Usage page's "group by" choices this store can aggregate (not tag yet: docs/ui.md)."""
    return [g for g in ("key", "team", "user", "model", "tag") if g in GROUP_COLUMNS]


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json",
                    headers={"cache-control": "no-store"})


def _refusal(message: str, status: int, kind: str = "auth_error") -> Response:
    return _json({"error": {"message": message, "type": kind, "param": None, "code": str(status)}}, status)


@dataclass
class _Failures:
    count: int
    since: float


class SignIn:
    def __init__(
        self, gate: UiGate, store: Store, http: sso.SsoHttp, *, user_seed: EntityPolicy,
        now: Callable[[], datetime], store_model_in_db: bool = False,
    ) -> None:
        self._store_model_in_db = store_model_in_db
        self._gate = gate
        self._store = store
        self._http = http
        self._seed = user_seed
        self._now = now
        self._failures: dict[str, _Failures] = {}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/ui/auth/session", self.session, methods=["GET"]),
            Route("/ui/auth/login", self.login, methods=["POST"]),
            Route("/ui/auth/logout", self.logout, methods=["POST"]),
            Route("/sso/key/generate", self.sso_start, methods=["GET"]),
            Route("/sso/callback", self.sso_callback, methods=["GET"]),
        ]

    async def session(self, request: Request) -> Response:
        gate = self._gate
        session = gate.session(request)
        if session is not None:
            try:
                principal = await gate.principals.principal(session)
            except GatewayError as exc:
                response = _refusal(exc.message, exc.status)
                gate.clear_session(response, request)
                return response
            response = _json(self._view(session, principal))
            renewed = gate.codec.renewed(session, gate.clock())
            if renewed is not None:
                gate.set_session(response, request, renewed)
            return response
        if gate.settings.open_access:
            return _json({"signed_in": True, "open": True, "subject": "anyone", "role": "proxy_admin",
                          "user_id": None, "csrf": "", "method": "open", "sso": False,
                          "store_model_in_db": self._store_model_in_db, "usage_groups": usage_groups()})
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
        response = _json({"signed_in": False, "sso": gate.settings.sso is not None, "login_csrf": token,
                          "password_login": gate.settings.password is not None})
        response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, path=cookie_path(request, "/ui/auth"),
                            httponly=True,
                            secure=gate.secure(request), samesite="strict")
        return response

    def _view(self, session: Session, principal: Principal) -> dict[str, Any]:
        return {
            "signed_in": True, "subject": session.subject, "user_id": principal.user_id,
            "role": principal.role or "proxy_admin", "method": session.method, "csrf": session.csrf,
            "idle_seconds": self._gate.codec.idle_seconds, "sso": self._gate.settings.sso is not None,
            "store_model_in_db": self._store_model_in_db, "usage_groups": usage_groups(),
        }

    async def login(self, request: Request) -> Response:
        gate = self._gate
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not cookie or not csrf_ok(cookie, request.headers.get(CSRF_HEADER)):
            return _refusal("CSRF check failed: reload the sign-in page and try again.", 403)
        client = request.client.host if request.client else "?"
        now = gate.clock()
        failures = self._failures.get(client)
        if failures is not None and now - failures.since > FAILURE_WINDOW:
            del self._failures[client]
            failures = None
        if failures is not None and failures.count >= MAX_FAILURES:
            message = "Too many wrong passwords; wait a few minutes and try again."
            return _refusal(message, 429, "rate_limit_error")
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            message = 'Send {"username": ..., "password": ...} as JSON.'
            return _refusal(message, 400, "invalid_request_error")
        username, password = str(body.get("username") or ""), str(body.get("password") or "")
        expected = gate.settings.password
        if expected is None:
            return _refusal("Password sign-in is off: set UI_PASSWORD (or a master key).", 401)
        right_user = hmac.compare_digest(username.encode(), gate.settings.username.encode())
        right_password = hmac.compare_digest(password.encode(), expected.encode())
        if not (right_user and right_password):
            if len(self._failures) > 10_000:  # bounded: forget the oldest window's clients
                self._failures = {k: v for k, v in self._failures.items() if now - v.since <= FAILURE_WINDOW}
            entry = self._failures.setdefault(client, _Failures(0, now))
            entry.count += 1
            return _refusal("Wrong username or password.", 401)
        self._failures.pop(client, None)
        session = gate.codec.issue("password", gate.settings.username, gate.settings.proxy_admin_id, now)
        principal = await gate.principals.principal(session)
        response = _json(self._view(session, principal))
        gate.set_session(response, request, session)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=cookie_path(request, "/ui/auth"))
        return response

    async def logout(self, request: Request) -> Response:
        gate = self._gate
        session = gate.session(request)
        if session is not None and not csrf_ok(session.csrf, request.headers.get(CSRF_HEADER)):
            return _refusal("CSRF check failed: send the session's token in the x-csrf-token header", 403)
        response = _json({"signed_in": False})
        gate.clear_session(response, request)
        return response

    def _redirect_uri(self, request: Request) -> str:
        base = self._gate.settings.base_url or str(request.base_url).rstrip("/")
        return f"{base}/sso/callback"

    async def sso_start(self, request: Request) -> Response:
        settings = self._gate.settings.sso
        if settings is None:
            return _refusal("SSO is not configured (set the GENERIC_* variables).", 404, "not_found_error")
        started = sso.begin(settings, self._redirect_uri(request))
        response = RedirectResponse(started.url, status_code=303)
        flow = {"state": started.state, "verifier": started.verifier}
        sealed = self._gate.codec.seal(flow, self._gate.clock())
        response.set_cookie(SSO_COOKIE, sealed, max_age=SSO_MAX_AGE, path=cookie_path(request, "/sso"),
                            httponly=True,
                            secure=self._gate.secure(request), samesite="lax")
        return response

    async def sso_callback(self, request: Request) -> Response:
        try:
            return await self._finish_sso(request)
        except GatewayError as exc:
            return self._back_to_ui(request, exc.message)

    async def _finish_sso(self, request: Request) -> Response:
        gate = self._gate
        settings = gate.settings.sso
        if settings is None:
            return _refusal("SSO is not configured (set the GENERIC_* variables).", 404, "not_found_error")
        params = request.query_params
        if params.get("error"):
            return self._back_to_ui(request, f"the identity provider refused: {params.get('error')}"[:200])
        sealed = gate.codec.unseal(request.cookies.get(SSO_COOKIE), gate.clock(), SSO_MAX_AGE)
        state, code = params.get("state"), params.get("code")
        if sealed is None or not state or not code or not csrf_ok(str(sealed.get("state")), state):
            return self._back_to_ui(request, "the sign-in took too long or did not start here; try again")
        claims = await sso.finish(settings, self._http, code=code, verifier=str(sealed["verifier"]),
                                  redirect_uri=self._redirect_uri(request))
        identity = sso.identity_of(claims, settings)
        user = await upsert_sso_user(
            self._store, identity, seed=self._seed, proxy_admin_id=gate.settings.proxy_admin_id,
            team_id_upsert=settings.team_id_upsert, now=self._now,
        )
        session = gate.codec.issue("sso", identity.email or user.id, user.id, gate.clock())
        response = RedirectResponse(public_path(request, "/ui/"), status_code=303)
        gate.set_session(response, request, session)
        response.delete_cookie(SSO_COOKIE, path=cookie_path(request, "/sso"))
        log.info("SSO sign-in: user %s", user.id)
        return response

    def _back_to_ui(self, request: Request, message: str) -> Response:
        query = urlencode({"sso_error": message})
        response = RedirectResponse(public_path(request, f"/ui/?{query}"), status_code=303)
        response.delete_cookie(SSO_COOKIE, path=cookie_path(request, "/sso"))
        return response


__all__ = ["SignIn"]
