"""``/audit/logs``: the audit log of admin writes."""

from typing import Annotated

from fastapi import APIRouter, Query

from tollgate.admin.audit import AuditService
from tollgate.admin.spend import parse_day
from tollgate.edge.admin.route import Actor, Json, Page


def add_audit_routes(router: APIRouter, audit: AuditService) -> None:
    @router.get("/audit/logs")
    async def audit_logs(
        actor: Actor,
        action: str | None = None,
        object_id: str | None = None,
        changed_by: str | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
        page: Page = 1,
        page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> Json:
        asked = (("action", action), ("target_id", object_id), ("actor_user_id", changed_by))
        filters = {n: v for n, v in asked if v}
        return await audit.list(
            actor, filters, start=parse_day(start_date, "start_date"),
            end=parse_day(end_date, "end_date", end=True), page=page, page_size=page_size,
        )
