"""How users, teams and organisations look in admin responses (LiteLLM's field names)."""

from __future__ import annotations

from typing import Any

from tollgate.admin.policies import iso, policy_view
from tollgate.store import StoreTx
from tollgate.store.records import Membership, Organization, Team, User


def user_view(u: User) -> dict[str, Any]:
    return {
        "user_id": u.id, "user_email": u.email, "user_alias": u.alias, "user_role": u.role,
        "organization_id": u.org_id, "created_at": iso(u.created_at), "updated_at": iso(u.updated_at),
        **policy_view(u.policy),
    }


def team_view(t: Team, members: list[Membership]) -> dict[str, Any]:
    return {
        "team_id": t.id, "team_alias": t.alias, "organization_id": t.org_id,
        "admins": [m.user_id for m in members if m.role == "admin"],
        "members": [m.user_id for m in members],
        "members_with_roles": [{"role": m.role, "user_id": m.user_id} for m in members],
        "created_at": iso(t.created_at), "updated_at": iso(t.updated_at), **policy_view(t.policy),
    }


def org_view(o: Organization, teams: list[Team]) -> dict[str, Any]:
    return {
        "organization_id": o.id, "organization_alias": o.alias,
        "teams": [{"team_id": t.id, "team_alias": t.alias} for t in teams],
        "created_at": iso(o.created_at), "updated_at": iso(o.updated_at), **policy_view(o.policy),
    }


async def members_of(tx: StoreTx, team_id: str) -> list[Membership]:
    return await tx.memberships.find({"team_id": team_id})
