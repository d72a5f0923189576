"""``/organization/*``: organisations."""

from fastapi import APIRouter

from tollgate.admin.orgs import OrgService
from tollgate.admin.requests import DeleteOrgsRequest, NewOrgRequest, UpdateOrgRequest
from tollgate.edge.admin.route import Actor, Json


def add_org_routes(router: APIRouter, orgs: OrgService) -> None:
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
