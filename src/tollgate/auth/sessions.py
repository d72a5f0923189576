"""Web UI sessions: a signed, stateless cookie that every replica can check, and its CSRF token.

A session is a small JSON document (who signed in, how, when, last activity, a CSRF token)
signed with HMAC-SHA256. Nothing is stored server-side, so a session works on every worker and
replica behind any load balancer without shared state. The signing key is derived from
``UI_SESSION_SECRET`` (or, without it, the master key) *and* the admin password, so changing
either signs everyone out. Sessions end after ``idle_seconds`` without activity (the UI renews
the cookie as it is used) and, whatever the activity, ``max_seconds`` after sign-in.

Writes authenticated by the cookie must repeat the session's CSRF token in ``x-csrf-token``
(synchronizer token: it lives inside the signed cookie, the page learns it from
``/ui/auth/session``); Bearer-key callers never carry the cookie and are unaffected.
Pure: time is passed in. May import ``errors``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

import orjson

SESSION_COOKIE = "tollgate_session"
LOGIN_CSRF_COOKIE = "tollgate_login_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Renew the cookie at most this often: each renewal is a Set-Cookie the browser must store.
RENEW_AFTER_SECONDS = 60

Method = Literal["password", "sso"]


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in person. ``user_id`` is their user record (SSO, or ``PROXY_ADMIN_ID`` for the
    password admin); ``subject`` is what the UI shows (username or email)."""

    sid: str
    method: Method
    subject: str
    user_id: str | None
    csrf: str
    issued_at: int
    seen_at: int

    @property
    def is_password_admin(self) -> bool:
        return self.method == "password"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_key(secret: str, password: str | None) -> bytes:
    """The HMAC key: the secret, bound to the admin password so a new password ends old sessions."""
    material = f"tollgate-ui-session\x00{secret}\x00{password or ''}".encode()
    return hashlib.sha256(material).digest()


class SessionCodec:
    """Issues, checks and renews session cookies. ``idle_seconds``: inactivity that ends a
    session; ``max_seconds``: the longest a session lives after sign-in."""

    def __init__(self, key: bytes, *, idle_seconds: int = 3600, max_seconds: int = 12 * 3600) -> None:
        self._key = key
        self.idle_seconds = idle_seconds
        self.max_seconds = max_seconds

    def issue(self, method: Method, subject: str, user_id: str | None, now: float) -> Session:
        moment = int(now)
        return Session(secrets.token_urlsafe(12), method, subject, user_id, secrets.token_urlsafe(24),
                       moment, moment)

    def encode(self, session: Session) -> str:
        payload = _b64(orjson.dumps({
            "v": 1, "sid": session.sid, "m": session.method, "sub": session.subject,
            "uid": session.user_id, "csrf": session.csrf, "iat": session.issued_at,
            "seen": session.seen_at,
        }))
        return f"{payload}.{self._sign(payload)}"

    def decode(self, token: str | None, now: float) -> Session | None:
        """The session, or ``None`` when the cookie is missing, forged, idle or too old."""
        if not token or token.count(".") != 1:
            return None
        payload, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            doc = orjson.loads(_unb64(payload))
            session = Session(
                str(doc["sid"]), "sso" if doc["m"] == "sso" else "password", str(doc["sub"]),
                None if doc["uid"] is None else str(doc["uid"]), str(doc["csrf"]), int(doc["iat"]),
                int(doc["seen"]),
            )
        except (binascii.Error, ValueError, KeyError, TypeError):
            return None
        if now - session.seen_at > self.idle_seconds or now - session.issued_at > self.max_seconds:
            return None
        return session

    def renewed(self, session: Session, now: float) -> Session | None:
        """The session with fresh activity, or ``None`` when it was renewed recently enough."""
        if now - session.seen_at < RENEW_AFTER_SECONDS:
            return None
        return replace(session, seen_at=int(now))

    def seal(self, doc: Mapping[str, str | int], now: float) -> str:
        """A signed, timestamped small document (the SSO flow's state and PKCE verifier)."""
        payload = _b64(orjson.dumps({**doc, "_t": int(now)}))
        return f"{payload}.{self._sign('seal:' + payload)}"

    def unseal(self, token: str | None, now: float, max_age: int) -> dict[str, object] | None:
        if not token or token.count(".") != 1:
            return None
        payload, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign("seal:" + payload)):
            return None
        try:
            doc = orjson.loads(_unb64(payload))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(doc, dict) or not isinstance(doc.get("_t"), int) or now - doc["_t"] > max_age:
            return None
        return doc

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


def csrf_ok(expected: str, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(expected.encode(), (sent or "").encode())


def same_origin(origin: str | None, host: str | None, scheme: str) -> bool:
    """A browser's ``Origin`` on a write must be this gateway (absent: not a browser CORS write)."""
    if not origin:
        return True
    return host is not None and origin.rstrip("/") in (f"{scheme}://{host}", f"http://{host}",
                                                        f"https://{host}")


__all__ = [
    "CSRF_HEADER", "LOGIN_CSRF_COOKIE", "SAFE_METHODS", "SESSION_COOKIE", "Session", "SessionCodec",
    "csrf_ok", "same_origin", "signing_key",
]
