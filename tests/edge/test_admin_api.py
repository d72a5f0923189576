"""The admin API over FastAPI + the admin router, authenticated by the real KeyAuthenticator over
the in-memory store (master key ``sk-master``)."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient

from tollgate.admin import AdminServices, AdminSettings
from tollgate.admin import spend as spend_module
from tollgate.auth.bearer import credential_from_headers
from tollgate.auth.keys import KeyAuthenticator
from tollgate.auth.principal import Principal
from tollgate.config import deployment_from_dict
from tollgate.edge.admin import admin_router, render_admin_error
from tollgate.edge.app import invalid_input
from tollgate.errors import GatewayError
from tollgate.store.memory import MemoryStore

EXAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "examples"
MASTER = {"Authorization": "Bearer sk-master"}
CONFIG_DEPLOYMENT = deployment_from_dict(
    {
        "model_name": "yaml-model",
        "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-upstream-secret"},
    }
)


@pytest.fixture
def client() -> Iterator[TestClient]:
    yield from serve_admin(AdminServices.build)


def serve_admin(build: Any) -> Iterator[TestClient]:
    """The admin router with the product's error rendering (a bad body is a 400 naming the field)."""
    store = MemoryStore()
    auth = KeyAuthenticator("sk-master", store)
    services = build(store, cache=auth)

    async def authenticate(request: Request) -> Principal:
        return await auth.authenticate(credential_from_headers(request.headers))

    app = FastAPI()
    app.add_exception_handler(GatewayError, render_admin_error)

    async def bad_body(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, RequestValidationError)
        return await render_admin_error(request, invalid_input(exc.errors()))

    app.add_exception_handler(RequestValidationError, bad_body)
    app.include_router(admin_router(services, authenticate, lambda: (CONFIG_DEPLOYMENT,)))
    with TestClient(app) as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def new_user(client: TestClient, user_id: str, role: str = "internal_user", **fields: Any) -> str:
    body = ok(
        client.post("/user/new", headers=MASTER, json={"user_id": user_id, "user_role": role, **fields})
    )
    assert body["user_id"] == user_id and body["user_role"] == role
    return str(body["key"])


def test_generate_returns_plaintext_once_and_hash(client: TestClient) -> None:
    body = ok(
        client.post(
            "/key/generate",
            headers=MASTER,
            json={
                "key_alias": "ci",
                "models": ["gpt-4o"],
                "max_budget": 1.5,
                "budget_duration": "1d",
                "rpm_limit": 7,
                "model_tpm_limit": {"gpt-4o": 100},
                "budgets": [{"max_budget": 0.017, "duration": "1d"}],
                "metadata": {"team": "x"},
                "duration": "7d",
            },
        )
    )
    key = body["key"]
    assert key.startswith("sk-") and len(key) > 40
    assert body["token"] == hashlib.sha256(key.encode()).hexdigest()
    assert body["key_name"] == f"sk-...{key[-4:]}"
    assert body["key_alias"] == "ci" and body["models"] == ["gpt-4o"] and body["rpm_limit"] == 7
    assert body["max_budget"] == 1.5 and body["budget_reset_at"] is not None and body["expires"] is not None
    assert body["model_tpm_limit"] == {"gpt-4o": 100}
    assert body["budgets"][0]["max_budget"] == 0.017 and body["budgets"][0]["reset_at"] is not None
    info = ok(client.get("/key/info", headers=bearer(key)))  # a key may look itself up
    assert info["info"]["token"] == body["token"] and "key" not in info["info"]
    assert key not in client.get("/key/info", headers=MASTER, params={"key": key}).text.replace(
        f'"key":"{key}"', ""
    )


def test_duplicate_alias_and_bad_bodies_are_400_naming_the_field(client: TestClient) -> None:
    ok(client.post("/key/generate", headers=MASTER, json={"key_alias": "dup"}))
    r = client.post("/key/generate", headers=MASTER, json={"key_alias": "dup"})
    assert r.status_code == 400 and "dup" in r.json()["error"]["message"]
    r = client.post("/key/generate", headers=MASTER, json={"max_budget": "lots"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_budget"
    r = client.post("/team/new", headers=MASTER, json={"rpm_limit": -1})
    assert r.status_code == 400 and r.json()["error"]["param"] == "rpm_limit"
    assert client.post("/key/generate", headers=MASTER, json={"duration": "soon"}).status_code == 400


def test_unknown_ids_are_404(client: TestClient) -> None:
    assert client.get("/team/info", headers=MASTER, params={"team_id": "nope"}).status_code == 404
    assert client.get("/key/info", headers=MASTER, params={"key": "sk-nope"}).status_code == 404
    assert client.post("/user/delete", headers=MASTER, json={"user_ids": ["nope"]}).status_code == 404
    assert client.post("/model/delete", headers=MASTER, json={"id": "nope"}).status_code == 404
    assert (
        client.get("/organization/info", headers=MASTER, params={"organization_id": "x"}).status_code == 404
    )


def test_auth_rejects_missing_wrong_blocked_and_expired_keys(client: TestClient) -> None:
    assert client.get("/key/list", headers=bearer("sk-wrong")).status_code == 401
    assert client.get("/key/list").status_code == 401
    key = ok(client.post("/key/generate", headers=MASTER, json={}))["key"]
    ok(client.post("/key/block", headers=MASTER, json={"key": key}))
    r = client.get("/key/info", headers=bearer(key))
    assert r.status_code == 401 and "blocked" in r.json()["error"]["message"]
    ok(client.post("/key/unblock", headers=MASTER, json={"key": key}))
    ok(client.get("/key/info", headers=bearer(key)))
    old = ok(client.post("/key/generate", headers=MASTER, json={"expires": "2020-01-01T00:00:00Z"}))["key"]
    r = client.get("/key/info", headers=bearer(old))
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def test_internal_user_manages_only_own_keys_within_own_limits(client: TestClient) -> None:
    alice = new_user(client, "alice", models=["m1", "m2"], rpm_limit=10, max_budget=5)
    new_user(client, "bob")
    assert client.post("/key/generate", headers=bearer(alice), json={"models": ["m3"]}).status_code == 403
    assert client.post("/key/generate", headers=bearer(alice), json={"rpm_limit": 20}).status_code == 403
    assert client.post("/key/generate", headers=bearer(alice), json={"max_budget": 6}).status_code == 403
    assert client.post("/key/generate", headers=bearer(alice), json={"user_id": "bob"}).status_code == 403
    mine = ok(client.post("/key/generate", headers=bearer(alice), json={"models": ["m1"], "rpm_limit": 5}))
    assert mine["user_id"] == "alice"
    listed = ok(client.get("/key/list", headers=bearer(alice)))
    assert listed["total_count"] == 2 and mine["token"] in listed["keys"]
    assert client.get("/key/list", headers=bearer(alice), params={"user_id": "bob"}).status_code == 403
    admin_key = ok(client.post("/key/generate", headers=MASTER, json={}))["key"]
    r = client.post("/key/delete", headers=bearer(alice), json={"keys": [admin_key]})
    assert r.status_code == 403 and "another user" in r.json()["error"]["message"]
    assert ok(client.post("/key/delete", headers=bearer(alice), json={"keys": [mine["key"]]})) == {
        "deleted_keys": [mine["key"]]
    }
    assert client.get("/user/info", headers=bearer(alice), params={"user_id": "bob"}).status_code == 403
    assert ok(client.get("/user/info", headers=bearer(alice)))["user_info"]["rpm_limit"] == 10
    for path, body in (
        ("/user/new", {}),
        ("/team/new", {}),
        ("/organization/new", {}),
        ("/key/block", {"key": admin_key}),
        ("/model/new", {"model_name": "x", "litellm_params": {"model": "openai/x"}}),
    ):
        assert client.post(path, headers=bearer(alice), json=body).status_code == 403, path
    assert client.get("/user/list", headers=bearer(alice)).status_code == 403


def test_viewers_read_but_never_write(client: TestClient) -> None:
    viewer = new_user(client, "vera", role="proxy_admin_viewer")
    iuv = new_user(client, "ivan", role="internal_user_viewer")
    assert ok(client.get("/user/list", headers=bearer(viewer)))["total"] == 2
    ok(client.get("/key/list", headers=bearer(viewer), params={"user_id": "ivan"}))
    assert client.post("/key/generate", headers=bearer(viewer), json={}).status_code == 403
    assert client.post("/team/new", headers=bearer(viewer), json={}).status_code == 403
    assert client.post("/key/generate", headers=bearer(iuv), json={}).status_code == 403
    assert ok(client.get("/user/info", headers=bearer(iuv)))["user_id"] == "ivan"
    assert client.get("/user/list", headers=bearer(iuv)).status_code == 403
    admin = new_user(client, "root", role="proxy_admin")
    ok(client.post("/team/new", headers=bearer(admin), json={"team_id": "t"}))


def test_list_pagination_and_delete_by_alias(client: TestClient) -> None:
    for i in range(5):
        ok(client.post("/key/generate", headers=MASTER, json={"key_alias": f"k{i}", "user_id": "u"}))
    page = ok(
        client.get(
            "/key/list",
            headers=MASTER,
            params={"page": 2, "size": 2, "user_id": "u", "return_full_object": "true"},
        )
    )
    assert page["total_count"] == 5 and page["current_page"] == 2 and page["total_pages"] == 3
    assert [k["key_alias"] for k in page["keys"]] == ["k2", "k3"]
    ok(client.post("/key/delete", headers=MASTER, json={"key_aliases": ["k0", "k1"]}))
    assert ok(client.get("/key/list", headers=MASTER))["total_count"] == 3
    assert client.post("/key/delete", headers=MASTER, json={"key_aliases": ["k2", "zz"]}).status_code == 404
    assert ok(client.get("/key/list", headers=MASTER))["total_count"] == 3  # nothing half-deleted


def test_regenerate_replaces_the_key(client: TestClient) -> None:
    first = ok(client.post("/key/generate", headers=MASTER, json={"key_alias": "r"}))
    second = ok(client.post(f"/key/{first['key']}/regenerate", headers=MASTER, json={}))
    assert second["key"] != first["key"] and second["key_alias"] == "r"
    assert client.get("/key/info", headers=bearer(first["key"])).status_code == 401
    ok(client.get("/key/info", headers=bearer(second["key"])))
    third = ok(client.post("/key/regenerate", headers=MASTER, json={"key": second["key"]}))
    assert third["token"] != second["token"]


def test_teams_members_and_cascading_delete(client: TestClient) -> None:
    team = ok(
        client.post(
            "/team/new",
            headers=MASTER,
            json={
                "team_id": "t1",
                "team_alias": "Team One",
                "models": ["m1"],
                "budgets": [{"max_budget": 0.017, "duration": "1d"}, {"max_budget": 0.5, "duration": "1mo"}],
                "members_with_roles": [{"role": "admin", "user_email": "a@example.com"}],
            },
        )
    )
    assert team["team_alias"] == "Team One" and len(team["members_with_roles"]) == 1
    assert [b["duration"] for b in team["budgets"]] == ["1d", "1mo"]
    added = ok(
        client.post(
            "/team/member_add",
            headers=MASTER,
            json={"team_id": "t1", "member": [{"role": "user", "user_id": "carol"}]},
        )
    )
    assert added["updated_users"][0]["user_id"] == "carol" and "carol" in added["members"]
    carol = ok(client.post("/key/generate", headers=MASTER, json={"user_id": "carol", "team_id": "t1"}))
    info = ok(client.get("/team/info", headers=bearer(carol["key"]), params={"team_id": "t1"}))
    assert info["team_info"]["models"] == ["m1"] and len(info["keys"]) == 1
    ok(client.post("/team/member_delete", headers=MASTER, json={"team_id": "t1", "user_id": "carol"}))
    assert client.get("/team/info", headers=bearer(carol["key"]), params={"team_id": "t1"}).status_code == 403
    ok(client.post("/team/block", headers=MASTER, json={"team_id": "t1"}))
    r = client.get("/key/info", headers=bearer(carol["key"]))
    assert r.status_code == 401 and "team 't1' is blocked" in r.json()["error"]["message"]
    ok(client.post("/team/delete", headers=MASTER, json={"team_ids": ["t1"]}))
    assert client.get("/key/info", headers=bearer(carol["key"])).status_code == 401
    assert ok(client.get("/team/list", headers=MASTER)) == []


def test_organizations(client: TestClient) -> None:
    org = ok(
        client.post(
            "/organization/new",
            headers=MASTER,
            json={"organization_id": "o1", "organization_alias": "Acme", "max_budget": 100},
        )
    )
    assert org["organization_alias"] == "Acme" and org["max_budget"] == 100
    ok(client.post("/team/new", headers=MASTER, json={"team_id": "t", "organization_id": "o1"}))
    info = ok(client.get("/organization/info", headers=MASTER, params={"organization_id": "o1"}))
    assert info["teams"] == [{"team_id": "t", "team_alias": None}]
    ok(client.post("/organization/update", headers=MASTER, json={"organization_id": "o1", "rpm_limit": 3}))
    assert ok(client.get("/organization/list", headers=MASTER))[0]["rpm_limit"] == 3
    r = client.post("/organization/delete", headers=MASTER, json={"organization_ids": ["o1"]})
    assert r.status_code == 400


def test_models_are_stored_and_secrets_masked(client: TestClient) -> None:
    created = ok(
        client.post(
            "/model/new",
            headers=MASTER,
            json={
                "model_name": "model-cheap",
                "litellm_params": {
                    "model": "bedrock/converse/us.amazon.nova-micro-v1:0",
                    "aws_region_name": "us-east-1",
                    "aws_secret_access_key": "AWS-SECRET-VALUE",
                    "aws_access_key_id": "AKIAEXAMPLE",
                },
            },
        )
    )
    model_id = created["model_info"]["id"]
    r = client.get("/model/info", headers=MASTER)
    assert (
        "AWS-SECRET-VALUE" not in r.text
        and "AKIAEXAMPLE" not in r.text
        and "sk-upstream-secret" not in r.text
    )
    data = {d["model_name"]: d for d in ok(r)["data"]}
    assert data["model-cheap"]["model_info"]["db_model"] is True
    assert data["model-cheap"]["litellm_params"]["aws_region_name"] == "us-east-1"
    assert data["yaml-model"]["litellm_params"]["api_key"] == "********"
    ok(client.post("/model/update", headers=MASTER, json={"id": model_id, "model_name": "model-cheaper"}))
    v1 = ok(client.get("/v1/model/info", headers=MASTER, params={"litellm_model_id": model_id}))
    assert [d["model_name"] for d in v1["data"]] == ["model-cheaper"]
    bad = client.post(
        "/model/new", headers=MASTER, json={"model_name": "x", "litellm_params": {"model": "nope/x"}}
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "litellm_params"
    assert ok(client.post("/model/delete", headers=MASTER, json={"id": model_id}))["message"].startswith(
        "Model:"
    )
    assert len(ok(client.get("/model/info", headers=MASTER))["data"]) == 1


def test_model_new_is_refused_unless_models_are_stored_in_the_database() -> None:
    def without_db_models(store: Any, cache: Any) -> AdminServices:
        return AdminServices.build(store, cache=cache, settings=AdminSettings(store_models=False))

    for client in serve_admin(without_db_models):
        body = {"model_name": "x", "litellm_params": {"model": "openai/x"}}
        refused = client.post("/model/new", headers=MASTER, json=body)
        assert refused.status_code == 400 and "store_model_in_db" in refused.json()["error"]["message"]
        listed = ok(client.get("/model/info", headers=MASTER))["data"]
        assert [d["model_name"] for d in listed] == ["yaml-model"]


def test_usage_plan_round_trips_and_applies(client: TestClient) -> None:
    plan = orjson.loads((EXAMPLES / "usage-plan.json").read_bytes())
    assert ok(client.post("/usage-plan/new", headers=MASTER, json=plan)) == plan
    assert ok(client.get("/usage-plan/info", headers=MASTER, params={"entity_id": "123"})) == plan
    user = ok(client.get("/user/info", headers=MASTER, params={"user_id": "123"}))["user_info"]
    assert user["input_tpm_limit"] == 40000 and user["output_tpm_limit"] == 10000 and user["rpm_limit"] == 60
    assert user["model_limits"]["us.amazon.nova-micro-v1:0"] == {
        "input_tpm": 100000,
        "output_tpm": 20000,
        "rpm": 120,
    }
    assert user["metadata"] == {"owner": "document-processing"} and user["models"] == []
    changed = {**plan, "active": False}
    ok(client.post("/usage-plan/update", headers=MASTER, json=changed))
    assert ok(client.get("/usage-plan/list", headers=MASTER)) == [changed]
    assert ok(client.get("/user/info", headers=MASTER, params={"user_id": "123"}))["user_info"]["blocked"]
    assert (
        client.post("/usage-plan/new", headers=MASTER, json={**plan, "entity_type": "GROUP"}).status_code
        == 400
    )
    ok(client.post("/usage-plan/delete", headers=MASTER, json={"entity_id": "123"}))
    assert client.get("/usage-plan/info", headers=MASTER, params={"entity_id": "123"}).status_code == 404


def test_spend_reports_are_built_with_the_collector_paused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered: list[str] = []
    real = spend_module.collector_paused

    @contextmanager
    def watched() -> Iterator[None]:
        with real():
            entered.append("paused" if not gc.isenabled() else "running")
            yield

    monkeypatch.setattr(spend_module, "collector_paused", watched)
    ok(client.get("/global/spend/report?group_by=api_key", headers=MASTER))
    ok(client.get("/user/daily/activity", headers=MASTER))
    assert entered == ["paused", "paused"] and gc.isenabled()
