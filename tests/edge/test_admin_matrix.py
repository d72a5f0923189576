"""The authorisation matrix is complete and enforced: every admin route has an entry (route × role),
every field of every write body has a writer (field × role), and each role outside a route's entry
is refused with a 403 before its body is read — driven through the real admin routers (the admin
API's, the chat-history sessions' and the response cache's), the real ``KeyAuthenticator`` and the
in-memory store, one key per role."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel

from tollgate.admin import AdminServices
from tollgate.admin.matrix import FIELDS, ROLES, ROUTES, TEAM_ADMIN, TEAM_ADMINS, USER, gate_roles
from tollgate.admin.requests import (
    GenerateKeyRequest,
    Member,
    MemberAddRequest,
    NewTeamRequest,
    NewUserRequest,
)
from tollgate.auth.bearer import credential_from_headers
from tollgate.auth.keys import KeyAuthenticator
from tollgate.auth.principal import MASTER, Principal
from tollgate.cache import ResponseCache
from tollgate.conversations import History, HistorySettings
from tollgate.edge.admin import admin_router
from tollgate.edge.admin.cache import cache_router
from tollgate.edge.admin.chat_history import chat_history_router
from tollgate.store.memory import MemoryStore
from tollgate.store.memory_conversations import MemoryConversationStore

PRINCIPAL_ROLES = ("proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer")


def _routes(routers: list[APIRouter]) -> list[APIRoute]:
    return [r for router in routers for r in router.routes if isinstance(r, APIRoute)]


Setup = tuple[TestClient, dict[str, str], list[APIRouter]]


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    store = MemoryStore()
    auth = KeyAuthenticator("sk-master", store)
    services = AdminServices.build(store, cache=auth)

    async def authenticate(request: Request) -> Principal:
        return await auth.authenticate(credential_from_headers(request.headers))

    async def seed() -> dict[str, str]:
        keys = {"proxy_admin": "sk-master"}
        for role in PRINCIPAL_ROLES[1:]:
            request = NewUserRequest(user_id=f"u-{role}", user_role=role)
            created = await services.users.new_user(MASTER, request)
            keys[role] = created["key"]
        await services.teams.new_team(MASTER, NewTeamRequest(team_id="t1"))
        created = await services.users.new_user(MASTER, NewUserRequest(user_id="u-team-admin"))
        await services.teams.add_members(
            MASTER, MemberAddRequest(team_id="t1", member=Member(user_id="u-team-admin", role="admin")))
        keys[TEAM_ADMIN] = created["key"]
        own = await services.keys.generate(MASTER, GenerateKeyRequest(user_id="u-internal_user"))
        keys["own_key"] = own["key"]
        return keys

    keys = asyncio.run(seed())
    history = History(MemoryConversationStore(), HistorySettings())
    routers = [
        admin_router(services, authenticate),
        chat_history_router(history, services.journal, authenticate),
        cache_router(ResponseCache.disabled(), services.journal, authenticate),
    ]
    app = FastAPI()
    for router in routers:
        app.include_router(router)
    with TestClient(app) as client:
        yield client, keys, routers


def test_every_route_has_an_entry_and_every_entry_a_route(setup: Setup) -> None:
    _, _, app = setup
    served = {f"{m} {r.path}" for r in _routes(app) for m in r.methods or ()}
    assert served == set(ROUTES), "admin.matrix.ROUTES and the admin router disagree"


def test_an_unclassified_route_cannot_be_built() -> None:
    from tollgate.edge.admin.route import admin_route_class

    async def never(request: Request) -> Principal:
        raise AssertionError

    route_class = admin_route_class(never)

    async def handler() -> dict[str, str]:
        return {}

    with pytest.raises(LookupError, match=r"no entry in admin\.matrix\.ROUTES"):
        route_class("/key/new-thing", handler, methods=["POST"])


def test_every_field_of_every_write_body_has_a_writer(setup: Setup) -> None:
    _, _, app = setup
    missing: list[str] = []
    for route in _routes(app):
        body = route.body_field
        if body is None:
            continue
        model = body.field_info.annotation
        members = getattr(model, "__args__", (model,))
        models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        for method in route.methods or ():
            rule = ROUTES[f"{method} {route.path}"]
            table = FIELDS.get(rule.fields or "", {})
            for m in models:
                missing += [f"{method} {route.path}: {name}" for name in m.model_fields
                            if name not in table and rule.fields is not None]
    assert not missing, f"fields without a writer in admin.matrix.FIELDS: {missing}"


def test_spend_is_written_by_nobody() -> None:
    for name, table in FIELDS.items():
        if "spend" in table:
            assert table["spend"] == "nobody", name


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("role", PRINCIPAL_ROLES)
def test_roles_outside_the_entry_are_refused_before_the_body(
    setup: Setup, route: str, role: str
) -> None:
    client, keys, _ = setup
    method, path = route.split(" ", 1)
    path = path.replace("{key}", keys["own_key"])
    # A body that is not even JSON: a refusal must come before anyone reads it.
    response = client.request(method, path, content=b"{not json", headers={
        "Authorization": f"Bearer {keys[role]}", "content-type": "application/json"})
    allowed = role in gate_roles(ROUTES[route])
    if allowed:
        assert response.status_code != 403 or "not allowed for the" not in response.text, response.text
    else:
        assert response.status_code == 403, (route, role, response.text)
        assert f"not allowed for the {role} role" in response.text


@pytest.mark.parametrize("route", sorted(r for r, rule in ROUTES.items() if rule.roles == TEAM_ADMINS))
def test_team_admin_routes_refuse_internal_users_who_are_not_team_admins(
    setup: Setup, route: str
) -> None:
    client, keys, _ = setup
    method, path = route.split(" ", 1)
    body: dict[str, Any] = {"team_id": "t1", "member": {"user_id": "someone"}, "user_id": "u-team-admin"}
    plain = client.request(method, path, json=body, headers={"Authorization": f"Bearer {keys[USER]}"})
    assert plain.status_code == 403 and "admin of team 't1'" in plain.text
    if path.endswith("member_add"):
        as_team_admin = {"Authorization": f"Bearer {keys[TEAM_ADMIN]}"}
        admin = client.request(method, path, json=body, headers=as_team_admin)
        assert admin.status_code == 200, admin.text
        escalate = {"team_id": "t1", "member": {"user_id": "boss", "role": "admin"}}
        refused = client.request(method, path, json=escalate, headers=as_team_admin)
        assert refused.status_code == 403 and "role 'user' only" in refused.text


def test_every_role_is_classified() -> None:
    assert set(ROLES) >= {role for rule in ROUTES.values() for role in rule.roles}
