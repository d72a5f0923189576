"""``/spend/logs``, ``/global/spend/report``, ``/user/daily/activity``: spend queries."""

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response

from tollgate.admin.spend import SpendService, cursor_of, log_view
from tollgate.edge.admin.route import Actor, Json, Page


def _json(payload: Any) -> Response:
    """Reports run to megabytes (a day per key for a month is 30,000 entries): rendered with
    orjson straight from the dicts, not validated against the declared model first."""
    return Response(orjson.dumps(payload), media_type="application/json")


def add_spend_routes(router: APIRouter, spend: SpendService) -> None:
    @router.get("/spend/logs")
    async def spend_logs(
        actor: Actor,
        response: Response,
        api_key: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        request_id: str | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
        page: Page = 1,
        page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: str | None = None,
    ) -> list[Json]:
        """LiteLLM's list of rows. ``cursor`` (tollgate's): the page after the row that cursor
        names; a full page answers the next one's in the ``x-tollgate-next-cursor`` header."""
        rows = await spend.log_rows(
            actor, api_key=api_key, user_id=user_id, team_id=team_id, request_id=request_id,
            start_date=start_date, end_date=end_date, page=page, page_size=page_size, cursor=cursor,
        )
        if len(rows) == page_size:
            response.headers["x-tollgate-next-cursor"] = cursor_of(rows[-1])
        return [log_view(r) for r in rows]

    @router.get("/global/spend/report", response_model=list[Json])
    async def spend_report(
        actor: Actor, start_date: str | None = None, end_date: str | None = None, group_by: str = "team"
    ) -> Response:
        return _json(await spend.report(actor, start_date=start_date, end_date=end_date, group_by=group_by))

    @router.get("/user/daily/activity", response_model=Json)
    async def daily_activity(
        actor: Actor,
        start_date: str | None = None,
        end_date: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        user_id: str | None = None,
        page: Page = 1,
        page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> Response:
        return _json(await spend.daily_activity(
            actor, start_date=start_date, end_date=end_date, model=model, api_key=api_key,
            user_id=user_id, page=page, page_size=page_size,
        ))
