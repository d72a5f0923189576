"""``/key/*``: virtual keys."""

from typing import Annotated

from fastapi import APIRouter, Query

from tollgate.admin.keys import KeyService
from tollgate.admin.requests import (
    DeleteKeysRequest,
    GenerateKeyRequest,
    KeyRef,
    RegenerateKeyRequest,
    UpdateKeyRequest,
)
from tollgate.edge.admin.route import Actor, Json, Page
from tollgate.errors import InvalidRequest


def add_key_routes(router: APIRouter, keys: KeyService) -> None:
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
        page: Page = 1,
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
