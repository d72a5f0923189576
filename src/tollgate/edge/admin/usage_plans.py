"""``/usage-plan/*``: usage plans in the DIY-gateway style."""

from fastapi import APIRouter

from tollgate.admin.requests import EntityType, UsagePlanRef, UsagePlanRequest
from tollgate.admin.usage_plans import UsagePlanService
from tollgate.edge.admin.route import Actor, Json


def add_usage_plan_routes(router: APIRouter, plans: UsagePlanService) -> None:
    @router.post("/usage-plan/new")
    async def plan_new(body: UsagePlanRequest, actor: Actor) -> Json:
        return await plans.put(actor, body, create=True)

    @router.post("/usage-plan/update")
    async def plan_update(body: UsagePlanRequest, actor: Actor) -> Json:
        return await plans.put(actor, body, create=False)

    @router.get("/usage-plan/info")
    async def plan_info(actor: Actor, entity_id: str, entity_type: EntityType | None = None) -> Json:
        return await plans.info(actor, entity_id, entity_type)

    @router.get("/usage-plan/list")
    async def plan_list(actor: Actor) -> list[Json]:
        return await plans.list_plans(actor)

    @router.post("/usage-plan/delete")
    async def plan_delete(body: UsagePlanRef, actor: Actor) -> Json:
        return await plans.delete(actor, body.entity_id, body.entity_type)
