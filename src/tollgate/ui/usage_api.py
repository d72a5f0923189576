"""Read endpoints the UI pages need beyond LiteLLM's admin API: searchable paged lists, paged
request logs with filters, spend per day by dimension, and budget status.

    GET /spend/logs/ui         LiteLLM's logs-page path: filters key/key alias/team/user/model/
                               status/time/request id; one page plus ``has_more`` (no COUNT over
                               the whole log, which is what times out on large spend tables) and
                               ``next_cursor`` (pass it as ``cursor``: a keyset page, any depth)
    GET /ui/api/keys           /key/list's answer with a search box (alias, user, team contains)
    GET /ui/api/{teams,users,organizations}   paged and searchable
    GET /ui/api/usage          spend and tokens per day, grouped by key, team, user or model
    GET /ui/api/budget         each budget of a key, user, team or org: spent in the current
                               window, remaining, reset time

Authorisation is the admin API's: admins and viewers read everything; other roles only their
own user (the same scoping as ``admin.spend``). Every query is paged or aggregated in the store.
(No ``from __future__ import annotations``: FastAPI reads the handlers' annotations.)
"""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from tollgate.admin import AdminServices
from tollgate.admin.access import can_read_all, require_read_all
from tollgate.admin.keys import key_view, token_of
from tollgate.admin.policies import iso, policy_view
from tollgate.admin.spend import cursor_of, log_view, parse_cursor, parse_day
from tollgate.admin.views import org_view, user_view
from tollgate.auth.principal import Principal
from tollgate.errors import InvalidRequest, PermissionDenied
from tollgate.store import GROUP_COLUMNS, Store
from tollgate.ui.budget_status import budget_status

Authenticate = Callable[[Request], Awaitable[Principal]]
Json = dict[str, Any]
USAGE_GROUPS = ("key", "team", "user", "model", "tag")
MAX_USAGE_DAYS = 400


def _own_user(actor: Principal, asked: str | None, action: str) -> str | None:
    """Admins and viewers: the filter as asked; others: always their own user."""
    if can_read_all(actor):
        return asked
    if not actor.user_id:
        raise PermissionDenied(f"{action}: your credential belongs to no user")
    if asked not in (None, "", actor.user_id):
        raise PermissionDenied(f"{action}: you may only see your own usage")
    return actor.user_id


MAX_PAGE = 1_000_000  # as the admin API: an offset past this means nothing and overflows SQL integers


def _pages(total: int, size: int) -> int:
    return -(-total // size) if total else 0


def ui_api_router(services: AdminServices, authenticate: Authenticate) -> APIRouter:
    router = APIRouter(tags=["ui"])
    store: Store = services.store

    async def actor_of(request: Request) -> Principal:
        principal = await authenticate(request)
        for name, value in request.query_params.multi_items():
            if "\x00" in name or "\x00" in value:  # PostgreSQL text cannot hold NUL: a 400, not a 500
                raise InvalidRequest(f"{name}: text must not contain NUL (\\u0000) characters", param=name)
        return principal

    Actor = Annotated[Principal, Depends(actor_of)]
    Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]
    Size = Annotated[int, Query(ge=1, le=100)]

    @router.get("/spend/logs/ui")
    async def logs_ui(
        actor: Actor, api_key: str | None = None, key_alias: str | None = None, team_id: str | None = None,
        user_id: str | None = None, model: str | None = None, status_filter: str | None = None,
        request_id: str | None = None, start_date: str | None = None, end_date: str | None = None,
        page: Page = 1, page_size: Size = 50, cursor: str | None = None,
    ) -> Json:
        if status_filter not in (None, "", "success", "failure"):
            raise InvalidRequest("status_filter: use success or failure", param="status_filter")
        asked = {"api_key": token_of(api_key) if api_key else None, "key_alias": key_alias,
                 "team_id": team_id, "model_group": model, "status": status_filter,
                 "request_id": request_id, "user_id": _own_user(actor, user_id, "/spend/logs/ui")}
        filters = {k: v for k, v in asked.items() if v}
        after = parse_cursor(cursor)
        rows = await store.spend_logs(
            filters, start=parse_day(start_date, "start_date"), end=parse_day(end_date, "end_date", end=True),
            limit=page_size + 1, offset=0 if after else (page - 1) * page_size, after=after,
        )
        data = []
        for row in rows[:page_size]:
            view = log_view(row)
            view.pop("messages", None)  # prompts are shown one request at a time, never in a list
            view.pop("response", None)
            data.append(view)
        more = len(rows) > page_size
        return {"data": data, "page": page, "page_size": page_size, "has_more": more, "total": None,
                "next_cursor": cursor_of(rows[page_size - 1]) if more else None}

    @router.get("/ui/api/keys")
    async def keys_search(
        actor: Actor, search: str = "", team_id: str | None = None, user_id: str | None = None,
        page: Page = 1, size: Size = 25,
    ) -> Json:
        asked = {"team_id": team_id, "user_id": _own_user(actor, user_id, "listing keys")}
        filters = {k: v for k, v in asked.items() if v}
        where = (("key_alias", "user_id", "team_id"), search.strip())
        async with store.transaction() as tx:
            total = await tx.keys.count(filters, search=where)
            rows = await tx.keys.find(filters, search=where, offset=(page - 1) * size, limit=size)
        return {"keys": [key_view(k) for k in rows], "total_count": total, "current_page": page,
                "total_pages": _pages(total, size)}

    @router.get("/ui/api/teams")
    async def teams_search(actor: Actor, search: str = "", page: Page = 1, size: Size = 25) -> Json:
        require_read_all(actor, "listing all teams")
        where = (("alias", "id"), search.strip())
        async with store.transaction() as tx:
            total = await tx.teams.count(search=where)
            rows = await tx.teams.find(search=where, offset=(page - 1) * size, limit=size)
            teams = []
            for t in rows:
                members = await tx.memberships.count({"team_id": t.id})
                teams.append({
                    "team_id": t.id, "team_alias": t.alias, "organization_id": t.org_id,
                    "member_count": members, "created_at": iso(t.created_at), **policy_view(t.policy),
                })
        return {"teams": teams, "total": total, "page": page, "total_pages": _pages(total, size)}

    @router.get("/ui/api/users")
    async def users_search(actor: Actor, search: str = "", page: Page = 1, size: Size = 25) -> Json:
        require_read_all(actor, "listing users")
        where = (("id", "email"), search.strip())
        async with store.transaction() as tx:
            total = await tx.users.count(search=where)
            rows = await tx.users.find(search=where, offset=(page - 1) * size, limit=size)
        return {"users": [user_view(u) for u in rows], "total": total, "page": page,
                "total_pages": _pages(total, size)}

    @router.get("/ui/api/organizations")
    async def orgs_search(actor: Actor, search: str = "", page: Page = 1, size: Size = 25) -> Json:
        require_read_all(actor, "listing organizations")
        where = (("alias", "id"), search.strip())
        async with store.transaction() as tx:
            total = await tx.orgs.count(search=where)
            rows = await tx.orgs.find(search=where, offset=(page - 1) * size, limit=size)
            orgs = [org_view(o, await tx.teams.find({"org_id": o.id}, limit=50)) for o in rows]
        return {"organizations": orgs, "total": total, "page": page, "total_pages": _pages(total, size)}

    @router.get("/ui/api/usage")
    async def usage(
        actor: Actor, group_by: str = "key", start_date: str | None = None, end_date: str | None = None,
        api_key: str | None = None, team_id: str | None = None, user_id: str | None = None,
        model: str | None = None, top: Annotated[int, Query(ge=1, le=25)] = 8,
    ) -> Json:
        if group_by not in USAGE_GROUPS:
            raise InvalidRequest(f"group_by: use one of {', '.join(USAGE_GROUPS)}", param="group_by")
        if group_by not in GROUP_COLUMNS:
            message = f"group_by: this store cannot group spend by {group_by} yet"
            raise InvalidRequest(message, param="group_by")
        today = datetime.now(UTC).date()
        start = parse_day(start_date, "start_date") or datetime.combine(
            today - timedelta(days=29), datetime.min.time(), UTC)
        end = parse_day(end_date, "end_date", end=True) or datetime.combine(
            today + timedelta(days=1), datetime.min.time(), UTC)
        if end <= start or (end - start).days > MAX_USAGE_DAYS:
            raise InvalidRequest(f"end_date must follow start_date, at most {MAX_USAGE_DAYS} days later",
                                 param="end_date")
        asked = {"api_key": token_of(api_key) if api_key else None, "team_id": team_id,
                 "model_group": model, "user_id": _own_user(actor, user_id, "/ui/api/usage")}
        filters = {k: v for k, v in asked.items() if v}
        from tollgate.ui.usage_series import series

        return await series(store, group_by, filters, start, end, top)

    @router.get("/ui/api/budget")
    async def budget(
        actor: Actor, key: str | None = None, user_id: str | None = None, team_id: str | None = None,
        organization_id: str | None = None,
    ) -> Json:
        return await budget_status(services, actor, key=key, user_id=user_id, team_id=team_id,
                                   organization_id=organization_id, now=datetime.now(UTC))

    return router


__all__ = ["ui_api_router"]
