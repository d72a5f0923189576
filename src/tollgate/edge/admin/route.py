"""The admin route class: authenticate, pass the matrix's gate, then read the body — in that order.

Every admin route is an ``AdminRoute``. Before FastAPI parses anything, the route authenticates the
caller from the headers (once: handlers receive that principal through ``Actor``), refuses a role
the matrix (``admin.matrix.ROUTES``) does not list for it, and refuses NUL characters in the query
and path; so an unauthenticated or unauthorised request is answered without its body being read.
A route without a matrix entry cannot be built. Errors leave in LiteLLM's ``{"error": {...}}``.
"""

from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse, Response

from tollgate.admin.access import check_route
from tollgate.admin.matrix import ROUTES, RouteRule
from tollgate.auth.principal import Principal
from tollgate.errors import GatewayError, InvalidRequest

Authenticate = Callable[[Request], Awaitable[Principal]]
Json = dict[str, Any]
PRINCIPAL = "tollgate.principal"
MAX_PAGE = 1_000_000  # offsets past this overflow nothing and mean nothing


def error_response(exc: GatewayError) -> JSONResponse:
    """LiteLLM's admin error body: ``{"error": {"message", "type", "param", "code"}}``."""
    body = {"error": {"message": exc.message, "type": exc.kind, "param": exc.param, "code": str(exc.status)}}
    return JSONResponse(body, status_code=exc.status, headers=exc.response_headers())


async def render_admin_error(request: Request, exc: Exception) -> JSONResponse:
    """``error_response`` as a Starlette exception handler."""
    assert isinstance(exc, GatewayError)
    return error_response(exc)


def admin_route_class(authenticate: Authenticate) -> type[APIRoute]:
    class AdminRoute(APIRoute):
        def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
            super().__init__(path, endpoint, **kwargs)
            self.rules: dict[str, RouteRule] = {}
            for method in sorted(self.methods or ()):
                rule = ROUTES.get(f"{method} {path}")
                if rule is None:
                    raise LookupError(f"admin route {method} {path} has no entry in admin.matrix.ROUTES")
                self.rules[method] = rule

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            path = self.path

            async def gated(request: Request) -> Response:
                try:
                    principal = await authenticate(request)
                    check_route(principal, f"{request.method} {path}", self.rules[request.method])
                    _no_nul(request)
                except GatewayError as exc:
                    return error_response(exc)
                request.scope[PRINCIPAL] = principal
                try:
                    return await handler(request)
                except GatewayError as exc:
                    return error_response(exc)

            return gated

    return AdminRoute


def _no_nul(request: Request) -> None:
    for name, value in (*request.query_params.multi_items(), *request.path_params.items()):
        if "\x00" in str(name) or "\x00" in str(value):
            raise InvalidRequest(f"{name}: text must not contain NUL (\\u0000) characters", param=str(name))


def _actor(request: Request) -> Principal:
    principal: Principal = request.scope[PRINCIPAL]
    return principal


Actor = Annotated[Principal, Depends(_actor)]
Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]
