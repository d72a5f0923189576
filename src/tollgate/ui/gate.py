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
            SESSION_COOKIE, self.codec.encode(session), max_age=self.codec.max_seconds,
            path=cookie_path(request, "/"), httponly=True, secure=self.secure(request), samesite="lax",
        )

    def clear_session(self, response: Response, request: Request) -> None:
        response.delete_cookie(SESSION_COOKIE, path=cookie_path(request, "/"), httponly=True,
                               secure=self.secure(request), samesite="lax")


def public_path(request: Request, path: str) -> str:
    """``path`` (``/ui/``) as the browser reaches it: under ``SERVER_ROOT_PATH`` when one is set.
    The prefixed path always answers, whether a proxy in front strips the prefix or not."""
    return str(request.scope.get("root_path", "")) + path


def cookie_path(request: Request, path: str) -> str:
    """The ``Path`` of a cookie for ``path``: under ``SERVER_ROOT_PATH`` when this request came
    with it; ``/`` when a root path is set but the request came without it (a proxy may have
    stripped it, so the browser's own path is unknown); ``path`` itself without a root path."""
    root = str(request.scope.get("root_path", ""))
    if not root:
        return path
    return root + path if request.url.path.startswith(root + "/") else "/"


__all__ = ["UiGate", "cookie_path", "public_path"]
