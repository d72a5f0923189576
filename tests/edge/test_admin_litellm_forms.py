"""Admin calls in the forms LiteLLM users send them: a team named by its alias wherever a route
takes a team, a key for a user that does not exist yet (an admin's creates the user with the
internal-user defaults), and LiteLLM's key fields in /key/generate and /user/new answers."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from tollgate.admin import AdminServices, AdminSettings, UserDefaults
from tollgate.auth.bearer import credential_from_headers
from tollgate.auth.keys import KeyAuthenticator
from tollgate.auth.principal import Principal
from tollgate.edge.admin import admin_router, render_admin_error
from tollgate.errors import GatewayError
from tollgate.store.memory import MemoryStore

MASTER = {"Authorization": "Bearer sk-master"}
DEFAULTS = UserDefaults.parse({"models": ["model-cheap"], "rpm_limit": 30}, Decimal("5"), "7d")
LITELLM_KEY_FIELDS = {"aliases": {}, "allowed_cache_controls": [], "config": {}, "guardrails": None,
                      "model_max_budget": {}, "permissions": {}, "send_invite_email": None}


@pytest.fixture
def client() -> Iterator[TestClient]:
    store = MemoryStore()
    auth = KeyAuthenticator("sk-master", store)
    services = AdminServices.build(store, cache=auth, settings=AdminSettings(user_defaults=DEFAULTS))

    async def authenticate(request: Request) -> Principal:
        return await auth.authenticate(credential_from_headers(request.headers))

    app = FastAPI()
    app.add_exception_handler(GatewayError, render_admin_error)
    app.include_router(admin_router(services, authenticate, lambda: ()))
    with TestClient(app) as c:
        yield c


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["error"]["message"])


def team(client: TestClient, alias: str, **fields: Any) -> str:
    return str(ok(client.post("/team/new", headers=MASTER, json={"team_alias": alias, **fields}))["team_id"])


def test_a_team_alias_names_the_team_in_every_route_that_takes_one(client: TestClient) -> None:
    drafting = team(client, "drafting", models=["model-cheap"])
    assert drafting != "drafting"  # a generated id, as LiteLLM gives it

    key = ok(client.post("/key/generate", headers=MASTER, json={"team_id": "drafting", "key_alias": "k"}))
    assert key["team_id"] == drafting
    moved = ok(client.post("/key/update", headers=MASTER, json={"key": key["key"], "team_id": "drafting"}))
    assert moved["team_id"] == drafting
    listed = ok(client.get("/key/list", headers=MASTER, params={"team_id": "drafting"}))
    assert listed["keys"] == [key["token"]]
    assert ok(client.get("/team/info", headers=MASTER, params={"team_id": "drafting"}))["team_id"] == drafting

    user = ok(client.post("/user/new", headers=MASTER,
                          json={"user_id": "u1", "team_id": "drafting", "teams": ["drafting"]}))
    assert user["teams"] == [drafting] and user["team_id"] == drafting
    ok(client.post("/team/member_add", headers=MASTER,
                   json={"team_id": "drafting", "member": {"user_id": "u2", "role": "user"}}))
    ok(client.post("/team/member_delete", headers=MASTER, json={"team_id": "drafting", "user_id": "u2"}))
    updated = ok(client.post("/team/update", headers=MASTER, json={"team_id": "drafting", "rpm_limit": 9}))
    assert (updated["team_id"], updated["rpm_limit"]) == (drafting, 9)
    assert ok(client.post("/team/block", headers=MASTER, json={"team_id": "drafting"}))["blocked"] is True
    assert ok(client.post("/team/unblock", headers=MASTER, json={"team_id": "drafting"}))["blocked"] is False
    assert ok(client.get("/spend/logs", headers=MASTER, params={"team_id": "drafting"})) == []
    ok(client.post("/team/delete", headers=MASTER, json={"team_ids": ["drafting"]}))
    assert error(client.get("/team/info", headers=MASTER, params={"team_id": drafting}), 404)


def test_an_id_wins_over_an_alias_and_an_ambiguous_alias_is_refused(client: TestClient) -> None:
    first = team(client, "shared")
    ok(client.post("/team/new", headers=MASTER, json={"team_id": "shared", "team_alias": "other"}))
    # "shared" is one team's id and another's alias: the id wins.
    key = ok(client.post("/key/generate", headers=MASTER, json={"team_id": "shared"}))
    assert key["team_id"] == "shared"
    # Two teams come to share an alias (/team/update does not refuse it, as LiteLLM does not).
    second = team(client, "twin")
    ok(client.post("/team/update", headers=MASTER, json={"team_id": first, "team_alias": "twin"}))
    message = error(client.post("/key/generate", headers=MASTER, json={"team_id": "twin"}), 400)
    assert message.startswith("team_id: 'twin' is no team's id and the alias of several teams (")
    assert f"'{first}'" in message and f"'{second}'" in message
    missing = error(client.post("/key/generate", headers=MASTER, json={"team_id": "nowhere"}), 404)
    assert missing == "team 'nowhere' not found (no team has that team_id or team_alias)"


def test_an_admins_key_for_an_unknown_user_creates_it_with_the_defaults(client: TestClient) -> None:
    key = ok(client.post("/key/generate", headers=MASTER, json={"user_id": "user@example.com"}))
    assert key["user_id"] == "user@example.com"
    info = ok(client.post("/user/info", headers=MASTER, json={"user_ids": ["user@example.com"]}))
    user = info["user_info"]
    assert (user["user_role"], user["models"], user["rpm_limit"]) == ("internal_user", ["model-cheap"], 30)
    assert (user["max_budget"], user["budget_duration"]) == (5.0, "7d")
    assert [k["token"] for k in info["keys"]] == [key["token"]]
    # A second key for the same user leaves the user as it is.
    ok(client.post("/user/update", headers=MASTER, json={"user_id": "user@example.com", "rpm_limit": 3}))
    ok(client.post("/key/generate", headers=MASTER, json={"user_id": "user@example.com"}))
    again = ok(client.get("/user/info", headers=MASTER, params={"user_id": "user@example.com"}))
    assert again["user_info"]["rpm_limit"] == 3 and len(again["keys"]) == 2
    # Moving a key to a user that does not exist creates that user too.
    ok(client.post("/key/update", headers=MASTER, json={"key": key["key"], "user_id": "moved@example.com"}))
    assert ok(client.get("/user/info", headers=MASTER, params={"user_id": "moved@example.com"}))["keys"]


def test_an_internal_user_still_creates_keys_only_for_themselves(client: TestClient) -> None:
    mine = ok(client.post("/user/new", headers=MASTER, json={"user_id": "dev"}))["key"]
    headers = {"Authorization": f"Bearer {mine}"}
    refused = error(client.post("/key/generate", headers=headers, json={"user_id": "someone-new"}), 403)
    assert "only for yourself" in refused
    assert error(client.get("/user/info", headers=MASTER, params={"user_id": "someone-new"}), 404)
    assert ok(client.post("/key/generate", headers=headers, json={}))["user_id"] == "dev"


def test_key_and_new_user_answers_carry_litellms_key_fields(client: TestClient) -> None:
    key = ok(client.post("/key/generate", headers=MASTER, json={"metadata": {"guardrails": ["pii"]}}))
    assert {name: key[name] for name in LITELLM_KEY_FIELDS} == {**LITELLM_KEY_FIELDS, "guardrails": ["pii"]}
    info = ok(client.get("/key/info", headers=MASTER, params={"key": key["key"]}))["info"]
    assert info["guardrails"] == ["pii"] and info["aliases"] == {} and "send_invite_email" not in info
    for body in ({"user_id": "with-key"}, {"user_id": "without-key", "auto_create_key": False}):
        user = ok(client.post("/user/new", headers=MASTER, json=body))
        assert {name: user[name] for name in LITELLM_KEY_FIELDS} == LITELLM_KEY_FIELDS, body
    assert "key" not in user  # no key was made
