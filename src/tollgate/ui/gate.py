"""The session cookie as a credential: turns a signed-in browser into the admin API's ``Principal``.

``UiGate.principal`` is consulted only when a request carries no API key, so Bearer callers are
unaffected. A cookie-authenticated write (POST, PATCH, PUT, DELETE) must repeat the session's
CSRF token in ``x-csrf-token`` and, when the browser sends ``Origin``, come from this gateway;
otherwise it is refused with 403 before any handler runs.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from tollgate.auth.principal import Principal
from tollgate.auth.sessions import (
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    Session,
    SessionCodec,
    csrf_ok,
    same_origin,
)
from tollgate.auth.ui_identity import SessionPrincipals
from tollgate.auth.ui_settings import UiSettings
from tollgate.errors import PermissionDenied

CSRF_REFUSAL = "CSRF check failed: send the session's token in the x-csrf-token header"


class UiGate:
    def __init__(
        self, settings: UiSettings, codec: SessionCodec, principals: SessionPrincipals,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.principals = principals
        self.clock = clock

    def session(self, request: Request) -> Session | None:
        return self.codec.decode(request.cookies.get(SESSION_COOKIE), self.clock())

    async def principal(self, request: Request) -> Principal | None:
        """The signed-in person, or ``None`` without a (valid) session cookie."""
        session = self.session(request)
        if session is None:
            return None
        if request.method not in SAFE_METHODS:
            headers = request.headers
            if not csrf_ok(session.csrf, headers.get(CSRF_HEADER)):
                raise PermissionDenied(CSRF_REFUSAL)
            if not same_origin(headers.get("origin"), headers.get("host"), request.url.scheme):
                raise PermissionDenied("CSRF check failed: the request comes from another site")
        return await self.principals.principal(session)

    def secure(self, request: Request) -> bool:
        base = self.settings.base_url or ""
        return request.url.scheme == "https" or base.startswith("https://")

    def set_session(self, response: Response, request: Request, session: Session) -> None:
        response.set_cookie(
            SESSION_COOKIE, self.codec.encode(session), max_age=self.codec.max_seconds, path="/",
            httponly=True, secure=self.secure(request), samesite="lax",
        )

    def clear_session(self, response: Response, request: Request) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, secure=self.secure(request),
                               samesite="lax")


__all__ = ["UiGate"]
