"""The response cache's admin routes, LiteLLM's paths: ``GET /cache/ping`` and ``POST /cache/delete``
(``{"keys": [...]}``, the keys hits report in ``x-litellm-cache-key``). Proxy admins only
(``admin.matrix.ROUTES``); a delete is an admin write, recorded in the audit log through the
journal (the entry commits only if the entries were deleted; they live in the cache's store, so
the two are not one transaction).
"""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from tollgate.admin.journal import Journal
from tollgate.cache import ResponseCache
from tollgate.edge.admin.route import Actor, Authenticate, admin_route_class
from tollgate.errors import GatewayError
from tollgate.store.cache import CacheUnavailable


class CacheDeleteRequest(BaseModel):
    keys: list[str] = Field(min_length=1, max_length=1000)


def _unavailable(detail: str) -> GatewayError:
    return GatewayError(f"Service Unhealthy: the response cache is {detail}", status=503)


def cache_router(cache: ResponseCache, journal: Journal, authenticate: Authenticate) -> APIRouter:
    router = APIRouter(tags=["cache"], route_class=admin_route_class(authenticate))

    @router.get("/cache/ping")
    async def ping(actor: Actor) -> dict[str, Any]:
        if not cache.enabled:
            raise _unavailable("off (litellm_settings.cache is not true)")
        try:
            await cache.ping()
        except CacheUnavailable as exc:
            raise _unavailable(f"unreachable ({exc})") from None
        return {"status": "healthy", "cache_type": cache.kind, "ping_response": True}

    @router.post("/cache/delete")
    async def delete(body: CacheDeleteRequest, actor: Actor) -> dict[str, Any]:
        if not cache.enabled:
            raise _unavailable("off (litellm_settings.cache is not true)")
        async with journal.write(actor, "/cache/delete") as write:
            write.before(",".join(body.keys)[:256])
            try:
                deleted = await cache.delete(body.keys)
            except CacheUnavailable as exc:
                raise _unavailable(f"unreachable ({exc})") from None
            view: dict[str, Any] = {"status": "success", "deleted": deleted}
            write.after(view)
        return view

    return router
