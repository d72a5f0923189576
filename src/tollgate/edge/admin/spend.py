"""``/spend/logs``, ``/global/spend/report``, ``/user/daily/activity``: spend queries."""

from typing import Annotated

from fastapi import APIRouter, Query

from tollgate.admin.spend import SpendService
from tollgate.edge.admin.route import Actor, Json, Page


def add_spend_routes(router: APIRouter, spend: SpendService) -> None:
    @router.get("/spend/logs")
    async def spend_logs(
        actor: Actor,
        api_key: str | None = None,
        user_id: str | None = None,
        team_id: str | None = None,
        request_id: str | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
        page: Page = 1,
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
        page: Page = 1,
        page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> Json:
        return await spend.daily_activity(
            actor, start_date=start_date, end_date=end_date, model=model, api_key=api_key,
            user_id=user_id, page=page, page_size=page_size,
        )
