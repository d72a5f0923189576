"""``/user/*``: users. ``/user/info`` answers every form LiteLLM clients send: ``?user_id=``,
``?user_ids=a,b``, a JSON body ``{"user_ids": [...]}`` (on GET or POST), or nothing (the caller)."""

from typing import Annotated

from fastapi import APIRouter, Query

from tollgate.admin.requests import DeleteUsersRequest, NewUserRequest, UpdateUserRequest, UserInfoRequest
from tollgate.admin.users import UserService
from tollgate.edge.admin.route import Actor, Json, Page


def _named(user_id: str | None, user_ids: str | None, body: UserInfoRequest | None) -> list[str]:
    named = [user_id] if user_id else []
    named += [u.strip() for u in (user_ids or "").split(",") if u.strip()]
    if body is not None:
        named += [*([body.user_id] if body.user_id else []), *(body.user_ids or ())]
    return list(dict.fromkeys(named))


def add_user_routes(router: APIRouter, users: UserService) -> None:
    @router.post("/user/new")
    async def user_new(body: NewUserRequest, actor: Actor) -> Json:
        return await users.new_user(actor, body)

    @router.get("/user/info")
    @router.post("/user/info")
    async def user_info(
        actor: Actor, user_id: str | None = None, user_ids: str | None = None,
        body: UserInfoRequest | None = None,
    ) -> Json:
        return await users.user_info(actor, _named(user_id, user_ids, body))

    @router.get("/user/list")
    async def user_list(
        actor: Actor,
        page: Page = 1,
        page_size: Annotated[int, Query(ge=1, le=100)] = 25,
        role: str | None = None,
    ) -> Json:
        return await users.list_users(actor, page=page, page_size=page_size, role=role)

    @router.post("/user/update")
    async def user_update(body: UpdateUserRequest, actor: Actor) -> Json:
        return await users.update_user(actor, body)

    @router.post("/user/delete")
    async def user_delete(body: DeleteUsersRequest, actor: Actor) -> Json:
        return await users.delete_users(actor, body.user_ids)
