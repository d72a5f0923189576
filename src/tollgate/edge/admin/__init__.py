"""The LiteLLM-compatible admin API: ``/key/*``, ``/user/*``, ``/team/*``, ``/organization/*``,
``/model/*``, ``/usage-plan/*`` — a few lines per handler over ``admin`` services.

FastAPI validates bodies (a bad body is a 422 naming the field). Services raise ``GatewayError``s;
``render_admin_error`` turns them into LiteLLM's ``{"error": {...}}`` bodies for apps that do not
already install a handler for them. (No ``from __future__ import annotations`` here: FastAPI
must see the handlers' real annotations, and ``Actor`` is local to ``admin_router``.)
"""

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.responses import Response

from tollgate.admin import AdminServices
from tollgate.admin import audit as audit_log
from tollgate.admin.audit import AuditService
from tollgate.admin.requests import (
    DeleteKeysRequest,
    DeleteOrgsRequest,
    DeleteTeamsRequest,
    DeleteUsersRequest,
    GenerateKeyRequest,
    KeyRef,
    MemberAddRequest,
    MemberDeleteRequest,
    ModelRef,
    ModelRequest,
    ModelUpdateRequest,
    NewOrgRequest,
    NewTeamRequest,
    NewUserRequest,
    RegenerateKeyRequest,
    TeamRef,
    UpdateKeyRequest,
    UpdateOrgRequest,
    UpdateTeamRequest,
    UpdateUserRequest,
    UsagePlanRef,
    UsagePlanRequest,
)
from tollgate.admin.spend import SpendService
from tollgate.auth.principal import Principal
from tollgate.config import Deployment
from tollgate.errors import GatewayError, InvalidRequest

Authenticate = Callable[[Request], Awaitable[Principal]]
Json = dict[str, Any]


async def render_admin_error(request: Request, exc: Exception) -> JSONResponse:
    """LiteLLM's admin error body: ``{"error": {"message", "type", "param", "code"}}``."""
    assert isinstance(exc, GatewayError)
    body = {"error": {"message": exc.message, "type": exc.kind, "param": exc.param, "code": str(exc.status)}}
    return JSONResponse(body, status_code=exc.status)


def admin_router(
    services: AdminServices,
    authenticate: Authenticate,
    deployments: Callable[[], Sequence[Deployment]] = tuple,
) -> APIRouter:
    """``deployments`` gives the deployments currently served (config ones are listed by /model/info).

    Every write (POST/PATCH/DELETE) is recorded in the audit log by ``audited_route``."""
    audit = AuditService(services.store)
    spend = SpendService(services.store)
    router = APIRouter(tags=["admin"], route_class=audited_route(audit, authenticate))

    async def actor_of(request: Request) -> Principal:
        return await authenticate(request)

    Actor = Annotated[Principal, Depends(actor_of)]
    keys, orgs, plans, models = services.keys, services.orgs, services.plans, services.deployments

    @router.post("/key/generate")
    async def key_generate(body: GenerateKeyRequest, actor: Actor) -> Json:
        return await keys.generate(actor, body)

    @router.post("/key/update")
    async def key_update(body: UpdateKeyRequest, actor: Actor) -> Json:
        return await keys.update(actor, body)

    @router.get("/key/info")
    async def key_info(actor: Actor, key: str | None = None) -> Json:
        return await keys.info(actor, key)

    @router.get("/key/list")
    async def key_list(
        actor: Actor,
        page: Annotated[int, Query(ge=1)] = 1,
        size: Annotated[int, Query(ge=1, le=100)] = 10,
        user_id: str | None = None,
        team_id: str | None = None,
        key_alias: str | None = None,
        return_full_object: bool = False,
    ) -> Json:
        return await keys.list_keys(
            actor, page=page, size=size, user_id=user_id, team_id=team_id, key_alias=key_alias,
            return_full_object=return_full_object,
        )

    @router.post("/key/delete")
    async def key_delete(body: DeleteKeysRequest, actor: Actor) -> Json:
        return await keys.delete(actor, body)

    @router.post("/key/block")
    async def key_block(body: KeyRef, actor: Actor) -> Json:
        return await keys.set_blocked(actor, body.key, True)

    @router.post("/key/unblock")
    async def key_unblock(body: KeyRef, actor: Actor) -> Json:
        return await keys.set_blocked(actor, body.key, False)

    @router.post("/key/regenerate")
    async def key_regenerate(body: RegenerateKeyRequest, actor: Actor) -> Json:
        if not body.key:
            raise InvalidRequest("key: pass the key to regenerate", param="key")
        return await keys.regenerate(actor, body.key, body)

    @router.post("/key/{key}/regenerate")
    async def key_regenerate_path(key: str, actor: Actor, body: RegenerateKeyRequest | None = None) -> Json:
        return await keys.regenerate(actor, key, body or RegenerateKeyRequest())

    @router.post("/user/new")
    async def user_new(body: NewUserRequest, actor: Actor) -> Json:
        return await orgs.new_user(actor, body)

    @router.get("/user/info")
    async def user_info(actor: Actor, user_id: str | None = None) -> Json:
        return await orgs.user_info(actor, user_id)

    @router.get("/user/list")
    async def user_list(
        actor: Actor,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int, Query(ge=1, le=100)] = 25,
        role: str | None = None,
    ) -> Json:
        return await orgs.list_users(actor, page=page, page_size=page_size, role=role)

    @router.post("/user/update")
    async def user_update(body: UpdateUserRequest, actor: Actor) -> Json:
        return await orgs.update_user(actor, body)

    @router.post("/user/delete")
    async def user_delete(body: DeleteUsersRequest, actor: Actor) -> Json:
        return await orgs.delete_users(actor, body.user_ids)

    @router.post("/team/new")
    async def team_new(body: NewTeamRequest, actor: Actor) -> Json:
        return await orgs.new_team(actor, body)

    @router.get("/team/info")
    async def team_info(actor: Actor, team_id: str) -> Json:
        return await orgs.team_info(actor, team_id)

    @router.get("/team/list")
    async def team_list(actor: Actor, organization_id: str | None = None) -> list[Json]:
        return await orgs.list_teams(actor, organization_id)

    @router.post("/team/update")
    async def team_update(body: UpdateTeamRequest, actor: Actor) -> Json:
        return await orgs.update_team(actor, body)

    @router.post("/team/delete")
    async def team_delete(body: DeleteTeamsRequest, actor: Actor) -> Json:
        return await orgs.delete_teams(actor, body.team_ids)

    @router.post("/team/member_add")
    async def team_member_add(body: MemberAddRequest, actor: Actor) -> Json:
        return await orgs.add_members(actor, body)

    @router.post("/team/member_delete")
    async def team_member_delete(body: MemberDeleteRequest, actor: Actor) -> Json:
        return await orgs.delete_member(actor, body)

    @router.post("/team/block")
    async def team_block(body: TeamRef, actor: Actor) -> Json:
        return await orgs.set_team_blocked(actor, body.team_id, True)

    @router.post("/team/unblock")
    async def team_unblock(body: TeamRef, actor: Actor) -> Json:
        return await orgs.set_team_blocked(actor, body.team_id, False)

    @router.post("/organization/new")
    async def org_new(body: NewOrgRequest, actor: Actor) -> Json:
        return await orgs.new_org(actor, body)

    @router.get("/organization/info")
    async def org_info(actor: Actor, organization_id: str) -> Json:
        return await orgs.org_info(actor, organization_id)

    @router.get("/organization/list")
    async def org_list(actor: Actor) -> list[Json]:
        return await orgs.list_orgs(actor)

    @router.patch("/organization/update")
    @router.post("/organization/update")
    async def org_update(body: UpdateOrgRequest, actor: Actor) -> Json:
        return await orgs.update_org(actor, body)

    @router.delete("/organization/delete")
    @router.post("/organization/delete")
    async def org_delete(body: DeleteOrgsRequest, actor: Actor) -> Json:
        return await orgs.delete_orgs(actor, body.organization_ids)

    @router.post("/model/new")
    async def model_new(body: ModelRequest, actor: Actor) -> Json:
        return await models.add(actor, body)

    @router.post("/model/update")
    async def model_update(body: ModelUpdateRequest, actor: Actor) -> Json:
        return await models.update(actor, body)

    @router.post("/model/delete")
    async def model_delete(body: ModelRef, actor: Actor) -> Json:
        return await models.delete(actor, body.id)

    @router.get("/model/info")
    @router.get("/v1/model/info")
    async def model_info(actor: Actor, litellm_model_id: str | None = None) -> Json:
        return await models.info(actor, deployments(), litellm_model_id)

    @router.post("/usage-plan/new")
    async def plan_new(body: UsagePlanRequest, actor: Actor) -> Json:
        return await plans.put(actor, body, create=True)

    @router.post("/usage-plan/update")
    async def plan_update(body: UsagePlanRequest, actor: Actor) -> Json:
        return await plans.put(actor, body, create=False)

    @router.get("/usage-plan/info")
    async def plan_info(actor: Actor, entity_id: str, entity_type: str | None = None) -> Json:
        return await plans.info(actor, entity_id, entity_type)

    @router.get("/usage-plan/list")
    async def plan_list(actor: Actor) -> list[Json]:
        return await plans.list_plans(actor)

    @router.post("/usage-plan/delete")
    async def plan_delete(body: UsagePlanRef, actor: Actor) -> Json:
        return await plans.delete(actor, body.entity_id, body.entity_type)

    @router.get("/spend/logs")
    async def spend_logs(
        actor: Actor,
        api_key: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        request_id: str | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[Json]:
        return await spend.logs(
            actor, api_key=api_key, user_id=user_id, team_id=team_id, request_id=request_id,
            start_date=start_date, end_date=end_date, page=page, page_size=page_size,
        )

    @router.get("/global/spend/report")
    async def spend_report(
        actor: Actor, start_date: str | None = None, end_date: str | None = None, group_by: str = "team"
    ) -> list[Json]:
        return await spend.report(actor, start_date=start_date, end_date=end_date, group_by=group_by)

    @router.get("/user/daily/activity")
    async def daily_activity(
        actor: Actor,
        start_date: str | None = None,
        end_date: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        user_id: str | None = None,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> Json:
        return await spend.daily_activity(
            actor, start_date=start_date, end_date=end_date, model=model, api_key=api_key,
            user_id=user_id, page=page, page_size=page_size,
        )

    @router.get("/audit/logs")
    async def audit_logs(
        actor: Actor,
        action: str | None = None,
        object_id: str | None = None,
        changed_by: str | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> Json:
        from tollgate.admin.spend import parse_day

        asked = (("action", action), ("target_id", object_id), ("actor_user_id", changed_by))
        filters = {n: v for n, v in asked if v}
        return await audit.list(
            actor, filters, start=parse_day(start_date, "start_date"),
            end=parse_day(end_date, "end_date", end=True), page=page, page_size=page_size,
        )

    return router


WRITE_METHODS = frozenset({"POST", "PATCH", "DELETE", "PUT"})


def audited_route(audit: AuditService, authenticate: Authenticate) -> type[APIRoute]:
    """An ``APIRoute`` that records each write: actor, route, target, before and after."""

    class AuditedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            if not ((self.methods or set()) & WRITE_METHODS):
                return handler
            action = self.path

            async def audited(request: Request) -> Response:
                body: Any = None
                before: Any = None
                try:
                    raw = await request.body()
                    body = orjson.loads(raw) if raw else None
                    before = await audit.before(audit_log.target_of(body), action)
                except Exception:
                    body = None  # a malformed body is the handler's to refuse
                response = await handler(request)
                if response.status_code >= 400:
                    return response
                try:
                    await _record(request, response, action, body, before)
                except Exception:  # an audit failure must not turn a done write into an error
                    import logging

                    logging.getLogger("tollgate.audit").exception("could not record audit entry")
                return response

            return audited

    async def _record(request: Request, response: Response, action: str, body: Any, before: Any) -> None:
        actor = await authenticate(request)
        after = orjson.loads(bytes(response.body)) if response.body else None
        target = audit_log.target_of(body) or audit_log.target_of(after)
        entry = audit_log.entry(actor, action, target, before, after, response.status_code, audit.clock())
        await audit.record(entry)

    return AuditedRoute
