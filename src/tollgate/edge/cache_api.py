"""The response cache's admin routes, LiteLLM's paths: ``GET /cache/ping`` and ``POST /cache/delete``
(``{"keys": [...]}``, the keys hits report in ``x-litellm-cache-key``). Proxy admins only; a delete
is recorded in the audit log like every admin write. (No ``from __future__ import annotations``:
FastAPI must see the handlers' real annotations.)
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from tollgate.admin.access import require_admin
from tollgate.admin.audit import AuditService
from tollgate.auth.principal import Principal
from tollgate.cache import ResponseCache
from tollgate.edge.admin_api import audited_route
from tollgate.errors import GatewayError
from tollgate.store.cache import CacheUnavailable

Authenticate = Callable[[Request], Awaitable[Principal]]


class CacheDeleteRequest(BaseModel):
    keys: list[str] = Field(min_length=1, max_length=1000)


def _unavailable(detail: str) -> GatewayError:
    return GatewayError(f"Service Unhealthy: the response cache is {detail}", status=503)


def cache_router(cache: ResponseCache, authenticate: Authenticate, audit: AuditService) -> APIRouter:
    router = APIRouter(tags=["cache"], route_class=audited_route(audit, authenticate))

    async def admin(request: Request) -> Principal:
        actor = await authenticate(request)
        require_admin(actor, request.url.path)
        return actor

    Admin = Annotated[Principal, Depends(admin)]

    @router.get("/cache/ping")
    async def ping(actor: Admin) -> dict[str, Any]:
        if not cache.enabled:
            raise _unavailable("off (litellm_settings.cache is not true)")
        try:
            await cache.ping()
        except CacheUnavailable as exc:
            raise _unavailable(f"unreachable ({exc})") from None
        return {"status": "healthy", "cache_type": cache.kind, "ping_response": True}

    @router.post("/cache/delete")
    async def delete(body: CacheDeleteRequest, actor: Admin) -> dict[str, Any]:
        if not cache.enabled:
            raise _unavailable("off (litellm_settings.cache is not true)")
        try:
            deleted = await cache.delete(body.keys)
        except CacheUnavailable as exc:
            raise _unavailable(f"unreachable ({exc})") from None
        return {"status": "success", "deleted": deleted}

    return router
