"""``/model/*``: deployments stored in the database, and ``/model/info`` over all of them."""

from collections.abc import Callable, Sequence

from fastapi import APIRouter

from tollgate.admin.deployments import DeploymentService
from tollgate.admin.requests import ModelRef, ModelRequest, ModelUpdateRequest
from tollgate.config import Deployment
from tollgate.edge.admin.route import Actor, Json


def add_model_routes(
    router: APIRouter, models: DeploymentService, deployments: Callable[[], Sequence[Deployment]]
) -> None:
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
