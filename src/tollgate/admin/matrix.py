"""The authorisation matrix of the admin API: who may call each route, and who may write each field.

Two tables, both plain data, read by the code that enforces them and by docs/security.md:

- ``ROUTES``: for every admin route (``"METHOD /path"``), the roles that may call it at all. The
  edge refuses every other role with a 403 right after authentication, before the body is read,
  and refuses to build a route that has no entry here (so a new route cannot ship unclassified).
- ``FIELDS``: for every field of every admin write body, who may set it. Admins may set every field
  except the ones nobody may write (``spend``: it is the sum of the spend log). Internal users
  write only keys, and only their own, under the rules below.

Roles: ``proxy_admin`` (the master key too), ``proxy_admin_viewer``, ``internal_user``,
``internal_user_viewer``, and ``team_admin``: an internal user whose membership in a team has the
role ``admin`` (LiteLLM's team admin), acting on that team.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

ADMIN = "proxy_admin"
VIEWER = "proxy_admin_viewer"
USER = "internal_user"
USER_VIEWER = "internal_user_viewer"
TEAM_ADMIN = "team_admin"
ROLES = (ADMIN, VIEWER, USER, USER_VIEWER, TEAM_ADMIN)

ADMINS = frozenset({ADMIN})
READERS = frozenset({ADMIN, VIEWER})
OWNERS = frozenset({ADMIN, USER, TEAM_ADMIN})
TEAM_ADMINS = frozenset({ADMIN, TEAM_ADMIN})
EVERYONE = frozenset(ROLES)


@dataclass(frozen=True, slots=True)
class RouteRule:
    roles: frozenset[str]
    scope: str  # what a caller who is not a proxy admin may reach through the route
    fields: str | None = None  # the FIELDS table that governs the route's body (write routes)


ADMIN_ONLY = "proxy admins only"
READ_ALL = "proxy admins and viewers: everything"
OWN_KEYS = "internal users: their own keys"

ROUTES: Mapping[str, RouteRule] = {
    "POST /key/generate": RouteRule(OWNERS, "internal users: keys for themselves, in teams they belong to, "
                                    "within their user's and team's models and limits", "key"),
    "POST /key/update": RouteRule(OWNERS, OWN_KEYS + "; limits, budgets and expiry may only tighten", "key"),
    "POST /key/regenerate": RouteRule(OWNERS, OWN_KEYS + "; limits may only tighten", "key"),
    "POST /key/{key}/regenerate": RouteRule(OWNERS, OWN_KEYS + "; limits may only tighten", "key"),
    "POST /key/delete": RouteRule(OWNERS, OWN_KEYS, "key"),
    "POST /key/block": RouteRule(ADMINS, ADMIN_ONLY, "key"),
    "POST /key/unblock": RouteRule(ADMINS, ADMIN_ONLY, "key"),
    "GET /key/info": RouteRule(EVERYONE, "their own keys"),
    "GET /key/list": RouteRule(EVERYONE, "their own keys"),
    "POST /user/new": RouteRule(ADMINS, ADMIN_ONLY, "user"),
    "POST /user/update": RouteRule(ADMINS, ADMIN_ONLY, "user"),
    "POST /user/delete": RouteRule(ADMINS, ADMIN_ONLY, "user"),
    "GET /user/info": RouteRule(EVERYONE, "their own user"),
    "POST /user/info": RouteRule(EVERYONE, "their own user (a read: LiteLLM clients post user_ids)"),
    "GET /user/list": RouteRule(READERS, READ_ALL),
    "POST /team/new": RouteRule(ADMINS, ADMIN_ONLY, "team"),
    "POST /team/update": RouteRule(ADMINS, ADMIN_ONLY, "team"),
    "POST /team/delete": RouteRule(ADMINS, ADMIN_ONLY, "team"),
    "POST /team/block": RouteRule(ADMINS, ADMIN_ONLY, "team"),
    "POST /team/unblock": RouteRule(ADMINS, ADMIN_ONLY, "team"),
    "POST /team/member_add": RouteRule(TEAM_ADMINS, "team admins: members (role user) of their team",
                                       "member"),
    "POST /team/member_delete": RouteRule(TEAM_ADMINS, "team admins: members of their team", "member"),
    "GET /team/info": RouteRule(EVERYONE, "teams they belong to"),
    "GET /team/list": RouteRule(EVERYONE, "teams they belong to"),
    "POST /organization/new": RouteRule(ADMINS, ADMIN_ONLY, "org"),
    "POST /organization/update": RouteRule(ADMINS, ADMIN_ONLY, "org"),
    "PATCH /organization/update": RouteRule(ADMINS, ADMIN_ONLY, "org"),
    "POST /organization/delete": RouteRule(ADMINS, ADMIN_ONLY, "org"),
    "DELETE /organization/delete": RouteRule(ADMINS, ADMIN_ONLY, "org"),
    "GET /organization/info": RouteRule(READERS, READ_ALL),
    "GET /organization/list": RouteRule(READERS, READ_ALL),
    "POST /model/new": RouteRule(ADMINS, ADMIN_ONLY, "model"),
    "POST /model/update": RouteRule(ADMINS, ADMIN_ONLY, "model"),
    "POST /model/delete": RouteRule(ADMINS, ADMIN_ONLY, "model"),
    "GET /model/info": RouteRule(EVERYONE, "the models they may use, without deployment details"),
    "GET /v1/model/info": RouteRule(EVERYONE, "the models they may use, without deployment details"),
    "POST /usage-plan/new": RouteRule(ADMINS, ADMIN_ONLY, "usage_plan"),
    "POST /usage-plan/update": RouteRule(ADMINS, ADMIN_ONLY, "usage_plan"),
    "POST /usage-plan/delete": RouteRule(ADMINS, ADMIN_ONLY, "usage_plan"),
    "GET /usage-plan/info": RouteRule(READERS, READ_ALL),
    "GET /usage-plan/list": RouteRule(READERS, READ_ALL),
    "GET /spend/logs": RouteRule(EVERYONE, "their own user's spend"),
    "GET /global/spend/report": RouteRule(EVERYONE, "their own user's spend"),
    "GET /user/daily/activity": RouteRule(EVERYONE, "their own user's spend"),
    "GET /audit/logs": RouteRule(READERS, READ_ALL),
    "GET /chat-history/session/list": RouteRule(READERS, READ_ALL),
    "GET /chat-history/session/info": RouteRule(READERS, READ_ALL),
    "POST /chat-history/session/delete": RouteRule(ADMINS, ADMIN_ONLY, "chat_session"),
    "GET /cache/ping": RouteRule(ADMINS, ADMIN_ONLY),
    "POST /cache/delete": RouteRule(ADMINS, ADMIN_ONLY, "cache"),
}

# Who may write a field. Admins: any field but NOBODY ones. Internal users (own keys only):
Writer = Literal[
    "ref",  # names the object written; not a value
    "admin",  # proxy admins only
    "owner",  # the key's owner, freely
    "within",  # the owner, within their user's and team's limits; on update/regenerate only tighter
    "tighten",  # the owner may only make it stricter (block, an earlier expiry)
    "add",  # the owner may add to it, never remove what is there (guardrails)
    "self",  # the owner may only name themselves
    "member",  # the owner may name a team they belong to when creating; never change it later
    "org",  # the owner may name only their own or their team's organisation, when creating
    "team_admin",  # proxy admins and the team's admins (who may add members with the role user)
    "nobody",  # nobody: derived from the spend log
]

_POLICY: Mapping[str, Writer] = {
    "models": "within", "max_budget": "within", "budget_duration": "within", "budgets": "within",
    "tpm_limit": "within", "rpm_limit": "within", "input_tpm_limit": "within",
    "output_tpm_limit": "within", "max_parallel_requests": "within", "model_rpm_limit": "within",
    "model_tpm_limit": "within", "model_limits": "within", "soft_budget": "owner", "metadata": "owner",
    "tags": "owner", "blocked": "tighten", "guardrails": "add", "spend": "nobody",
}


def _admin_only(*names: str) -> dict[str, Writer]:
    table: dict[str, Writer] = {name: "admin" for name in (*_POLICY, *names)}
    table["spend"] = "nobody"
    return table


FIELDS: Mapping[str, Mapping[str, Writer]] = {
    "key": {
        **_POLICY, "key": "ref", "keys": "ref", "key_aliases": "ref", "key_alias": "owner",
        "new_key": "owner", "duration": "tighten", "expires": "tighten", "user_id": "self",
        "team_id": "member", "organization_id": "org",
    },
    "user": _admin_only(
        "user_id", "user_ids", "user_email", "user_alias", "user_role", "teams", "organization_id",
        "team_id", "auto_create_key", "key_alias", "duration",
    ),
    "team": _admin_only("team_id", "team_ids", "team_alias", "organization_id", "members_with_roles"),
    "member": {"team_id": "ref", "member": "team_admin", "user_id": "team_admin", "user_email": "team_admin"},
    "org": _admin_only("organization_id", "organization_ids", "organization_alias"),
    "model": {name: "admin" for name in ("id", "model_name", "litellm_params", "model_info")},
    "chat_session": {"session_ids": "ref"},
    "cache": {"keys": "ref"},
    "usage_plan": {
        name: "admin"
        for name in ("entity_id", "entity_type", "tenant_id", "model_permissions", "active",
                     "default_limits", "model_limits", "budgets", "metadata")
    },
}


def gate_roles(rule: RouteRule) -> frozenset[str]:
    """The principal roles that pass the route's gate: a team admin is an internal user whose
    team role the service checks, so internal users pass the gate of team-admin routes."""
    roles = set(rule.roles - {TEAM_ADMIN})
    if TEAM_ADMIN in rule.roles:
        roles.add(USER)
    return frozenset(roles)
