"""``/team/*``: teams and their members."""

from fastapi import APIRouter

from tollgate.admin.requests import (
    DeleteTeamsRequest,
    MemberAddRequest,
    MemberDeleteRequest,
    NewTeamRequest,
    TeamRef,
    UpdateTeamRequest,
)
from tollgate.admin.teams import TeamService
from tollgate.edge.admin.route import Actor, Json


def add_team_routes(router: APIRouter, teams: TeamService) -> None:
    @router.post("/team/new")
    async def team_new(body: NewTeamRequest, actor: Actor) -> Json:
        return await teams.new_team(actor, body)

    @router.get("/team/info")
    async def team_info(actor: Actor, team_id: str) -> Json:
        return await teams.team_info(actor, team_id)

    @router.get("/team/list")
    async def team_list(actor: Actor, organization_id: str | None = None) -> list[Json]:
        return await teams.list_teams(actor, organization_id)

    @router.post("/team/update")
    async def team_update(body: UpdateTeamRequest, actor: Actor) -> Json:
        return await teams.update_team(actor, body)

    @router.post("/team/delete")
    async def team_delete(body: DeleteTeamsRequest, actor: Actor) -> Json:
        return await teams.delete_teams(actor, body.team_ids)

    @router.post("/team/member_add")
    async def team_member_add(body: MemberAddRequest, actor: Actor) -> Json:
        return await teams.add_members(actor, body)

    @router.post("/team/member_delete")
    async def team_member_delete(body: MemberDeleteRequest, actor: Actor) -> Json:
        return await teams.delete_member(actor, body)

    @router.post("/team/block")
    async def team_block(body: TeamRef, actor: Actor) -> Json:
        return await teams.set_team_blocked(actor, body.team_id, True)

    @router.post("/team/unblock")
    async def team_unblock(body: TeamRef, actor: Actor) -> Json:
        return await teams.set_team_blocked(actor, body.team_id, False)
