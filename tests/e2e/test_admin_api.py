"""The LiteLLM-compatible admin API against real ``tollgate serve`` processes, on a fresh SQLite file
and on a fresh PostgreSQL database (migrated with ``tollgate migrate``): two replicas share the
database. Every response is checked for leaked secrets (master key, upstream API keys)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.admin_env import database, gateways, run_tollgate, write_config
from tests.e2e.conftest import openai_deployment
from tests.polling import wait_until

MASTER = "sk-admin-master-e2e"
CONFIG_SECRET = "sk-upstream-secret"
DB_SECRET = "sk-db-model-secret-0451"
SECRETS = (MASTER, CONFIG_SECRET, DB_SECRET)
PLAN = Path(__file__).resolve().parents[1] / "fixtures" / "examples" / "usage-plan.json"


def _no_secrets(response: httpx.Response) -> None:
    response.read()
    for secret in SECRETS:
        assert secret not in response.text, f"{response.request.url} leaked a secret"


@dataclass
class Admin:
    url: str
    replica2: str
    http: httpx.Client

    def post(self, path: str, body: Any, key: str = MASTER, url: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return self.http.post(f"{url or self.url}{path}", json=body, headers=headers)

    def get(self, path: str, auth: str = MASTER, url: str | None = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {auth}"}
        return self.http.get(f"{url or self.url}{path}", params=params, headers=headers)

    def ok(self, path: str, body: Any | None = None, auth: str = MASTER, **params: Any) -> Any:
        response = self.get(path, auth, **params) if body is None else self.post(path, body, auth)
        assert response.status_code == 200, response.text
        return response.json()

    def chat(self, key: str, model: str = "gpt-fake", url: str | None = None) -> str:
        client = openai.OpenAI(base_url=f"{url or self.url}/v1", api_key=key, max_retries=0)
        reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        return reply.choices[0].message.content or ""

    def chat_status(self, key: str, model: str = "gpt-fake", url: str | None = None) -> tuple[int, str]:
        response = self.post(
            "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": "hi"}]},
            key, url,
        )
        return response.status_code, response.text


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def admin(request: pytest.FixtureRequest, upstream: str) -> Iterator[Admin]:
    with database(request.param) as db_url:
        config = {
            "model_list": [
                openai_deployment("gpt-fake", upstream, "gpt-fake"),
                {"model_name": "local-fake", "litellm_params": {"model": "fake/local"}},
            ],
            "general_settings": {"master_key": MASTER, "database_url": db_url, "store_model_in_db": True},
        }
        path = write_config(config)
        try:
            migrated = run_tollgate(["migrate", "--config", str(path)])
            assert migrated.returncode == 0, migrated.stderr
            hooks = {"response": [_no_secrets]}
            with gateways(config, 2) as (first, second), httpx.Client(timeout=30, event_hooks=hooks) as http:
                yield Admin(first, second, http)
        finally:
            path.unlink()


def test_readiness_reports_the_database(admin: Admin) -> None:
    ready = httpx.get(f"{admin.url}/health/readiness")
    assert ready.status_code == 200
    assert ready.json()["db"] == "connected"


def test_generate_key_works_at_once_and_shows_plaintext_once(admin: Admin) -> None:
    alias = _uid("gen")
    created = admin.ok("/key/generate", {"key_alias": alias, "models": ["gpt-fake"]})
    key = created["key"]
    assert key.startswith("sk-") and len(key) > 20
    assert created["key_name"] == f"sk-...{key[-4:]}"
    assert created["key_alias"] == alias and created["models"] == ["gpt-fake"]
    assert admin.chat(key)  # the openai SDK, straight away
    assert admin.chat(key, url=admin.replica2)
    info = admin.ok("/key/info", key=key)["info"]
    assert info["key_alias"] == alias and info["token"] == created["token"]
    assert "key" not in info
    listed = admin.ok("/key/list", key_alias=alias, return_full_object="true")
    assert [k["token"] for k in listed["keys"]] == [created["token"]]
    assert key not in json.dumps(listed)  # the plaintext is never shown again


def test_key_list_paginates(admin: Admin) -> None:
    user = _uid("pager")
    admin.ok("/user/new", {"user_id": user, "auto_create_key": False})
    tokens = {admin.ok("/key/generate", {"user_id": user})["token"] for _ in range(3)}
    first = admin.ok("/key/list", user_id=user, size=2, page=1)
    second = admin.ok("/key/list", user_id=user, size=2, page=2)
    assert (first["total_count"], first["total_pages"], first["current_page"]) == (3, 2, 1)
    assert len(first["keys"]) == 2 and len(second["keys"]) == 1
    assert set(first["keys"]) | set(second["keys"]) == tokens


def test_key_update_limits_take_effect(admin: Admin) -> None:
    key = admin.ok("/key/generate", {})["key"]
    admin.chat(key)
    updated = admin.ok("/key/update", {"key": key, "models": ["local-fake"]})
    assert updated["models"] == ["local-fake"]
    status, text = admin.chat_status(key, "gpt-fake")
    assert status == 401 and "local-fake" in text
    assert admin.chat_status(key, "local-fake")[0] == 200
    admin.ok("/key/update", {"key": key, "rpm_limit": 1})
    statuses = [admin.chat_status(key, "local-fake")[0] for _ in range(3)]
    assert statuses[0] == 200 and 429 in statuses


def test_block_unblock_regenerate_delete(admin: Admin) -> None:
    key = admin.ok("/key/generate", {})["key"]
    admin.chat(key)
    admin.ok("/key/block", {"key": key})
    status, text = admin.chat_status(key)
    assert status == 401 and "blocked" in text
    admin.ok("/key/unblock", {"key": key})
    assert admin.chat(key)

    new = admin.ok("/key/regenerate", {"key": key})["key"]
    assert new != key and new.startswith("sk-")
    assert admin.chat_status(key)[0] == 401
    assert admin.chat(new)

    assert admin.ok("/key/delete", {"keys": [new]})["deleted_keys"] == [new]
    assert admin.chat_status(new)[0] == 401
    assert admin.get("/key/info", key=new).status_code == 404


def test_expired_key_is_refused(admin: Admin) -> None:
    key = admin.ok("/key/generate", {"duration": "1s"})["key"]
    wait_until(lambda: admin.chat_status(key)[0] == 401, what="the key expired")
    status, text = admin.chat_status(key)
    assert status == 401 and "expired" in text


def test_user_new_returns_a_working_key(admin: Admin) -> None:
    user = _uid("user")
    created = admin.ok("/user/new", {"user_id": user, "user_email": f"{user}@example.com"})
    assert created["user_id"] == user and created["key"].startswith("sk-")
    assert admin.chat(created["key"])
    assert admin.ok("/user/info", user_id=user)["user_id"] == user


def test_team_members_and_team_key_bounded_by_team_models(admin: Admin) -> None:
    org = admin.ok("/organization/new", {"organization_alias": _uid("org")})
    assert admin.ok("/organization/info", organization_id=org["organization_id"])["organization_id"] == (
        org["organization_id"]
    )
    team = admin.ok("/team/new", {"team_alias": _uid("team"), "models": ["local-fake"],
                                  "organization_id": org["organization_id"]})
    user = _uid("member")
    member_key = admin.ok("/user/new", {"user_id": user})["key"]
    admin.ok("/team/member_add", {"team_id": team["team_id"], "member": {"role": "user", "user_id": user}})
    info = admin.ok("/team/info", team_id=team["team_id"])
    assert user in json.dumps(info)

    team_key = admin.ok("/key/generate", {"team_id": team["team_id"]})["key"]
    assert admin.chat(team_key, "local-fake")
    status, text = admin.chat_status(team_key, "gpt-fake")
    assert status in (401, 403) and "local-fake" in text

    # The member may create a key for the team, but not with models the team lacks.
    own = admin.post("/key/generate", {"team_id": team["team_id"], "models": ["local-fake"]}, member_key)
    assert own.status_code == 200, own.text
    wider = admin.post("/key/generate", {"team_id": team["team_id"], "models": ["gpt-fake"]}, member_key)
    assert wider.status_code == 403 and "gpt-fake" in wider.text


def test_model_new_is_served_on_both_replicas_and_masks_secrets(admin: Admin, upstream: str) -> None:
    name = _uid("db-model")
    body = {
        "model_name": name,
        "litellm_params": {"model": "openai/gpt-fake", "api_base": f"{upstream}/v1", "api_key": DB_SECRET},
        "model_info": {"store_model_in_db": True},
    }
    added = admin.ok("/model/new", body)
    model_id = added.get("model_id") or added.get("model_info", {}).get("id")
    assert model_id
    key = admin.ok("/key/generate", {})["key"]
    assert admin.chat(key, name)  # this replica at once
    wait_until(
        lambda: admin.chat_status(key, name, admin.replica2)[0] == 200,
        timeout=8,
        interval=0.25,
        what="the second replica serving the new model",
    )
    info = admin.ok("/model/info")["data"]
    mine = [m for m in info if m["model_name"] == name]
    assert len(mine) == 1 and mine[0]["litellm_params"].get("api_key") != DB_SECRET
    assert any(m["model_name"] == "gpt-fake" for m in info)  # config models too, masked
    admin.ok("/model/delete", {"id": model_id})
    assert admin.chat_status(key, name)[0] in (400, 404)
    assert admin.post("/model/delete", {"id": model_id}).status_code == 404


def test_usage_plan_round_trips(admin: Admin) -> None:
    plan = json.loads(PLAN.read_text())
    admin.ok("/usage-plan/new", plan)
    got = admin.ok("/usage-plan/info", entity_id=plan["entity_id"], entity_type=plan["entity_type"])
    for field, value in plan.items():
        assert got[field] == value, field
    assert plan in admin.ok("/usage-plan/list")
    missing = admin.post("/usage-plan/update", {**plan, "entity_id": "no-such-entity"})
    assert missing.status_code == 404
    bad = admin.post("/usage-plan/new", {**plan, "entity_type": "GROUP"})
    assert bad.status_code == 400 and "entity_type" in bad.text


def test_authorisation_matrix(admin: Admin) -> None:
    user = _uid("internal")
    body = {"user_id": user, "user_role": "internal_user", "models": ["gpt-fake"]}
    key = admin.ok("/user/new", body)["key"]
    for_other = admin.post("/key/generate", {"user_id": "someone-else"}, key)
    assert for_other.status_code == 403 and "yourself" in for_other.text
    wider = admin.post("/key/generate", {"models": ["gpt-fake", "local-fake"]}, key)
    assert wider.status_code == 403 and "local-fake" in wider.text
    own = admin.post("/key/generate", {"models": ["gpt-fake"]}, key)
    assert own.status_code == 200, own.text
    assert admin.post("/key/block", {"key": own.json()["key"]}, key).status_code == 403

    viewer = admin.ok("/user/new", {"user_id": _uid("viewer"), "user_role": "proxy_admin_viewer"})["key"]
    assert admin.get("/key/list", viewer).status_code == 200
    assert admin.get("/user/list", viewer).status_code == 200
    denied = admin.post("/key/generate", {}, viewer)
    assert denied.status_code == 403 and "proxy_admin_viewer" in denied.text
    assert admin.post("/team/new", {"team_alias": "x"}, viewer).status_code == 403


def test_models_lists_only_the_keys_models(admin: Admin) -> None:
    key = admin.ok("/key/generate", {"models": ["local-fake"]})["key"]
    for path in ("/models", "/v1/models"):
        ids = [m["id"] for m in admin.ok(path, auth=key)["data"]]
        assert ids == ["local-fake"], path
    everything = {m["id"] for m in admin.ok("/v1/models")["data"]}
    assert {"gpt-fake", "local-fake"} <= everything


def test_duplicate_alias_unknown_ids_and_bad_bodies(admin: Admin) -> None:
    alias = _uid("dup")
    admin.ok("/key/generate", {"key_alias": alias})
    duplicate = admin.post("/key/generate", {"key_alias": alias})
    assert duplicate.status_code == 400 and alias in duplicate.text

    assert admin.get("/key/info", key="sk-no-such-key").status_code == 404
    assert admin.get("/team/info", team_id="no-such-team").status_code == 404
    assert admin.get("/user/info", user_id="no-such-user").status_code == 404
    assert admin.get("/organization/info", organization_id="no-such-org").status_code == 404
    assert admin.post("/key/block", {"key": "sk-no-such-key"}).status_code == 404
    assert admin.post("/key/update", {"key": "sk-no-such-key", "rpm_limit": 1}).status_code == 404
    member = {"team_id": "no-such-team", "member": {"user_id": "x"}}
    assert admin.post("/team/member_add", member).status_code == 404

    bad_budget = admin.post("/key/generate", {"max_budget": "lots"})
    assert bad_budget.status_code == 400 and "max_budget" in bad_budget.text
    missing = admin.post("/team/member_add", {"member": {"user_id": "x"}})
    assert missing.status_code == 400 and "team_id" in missing.text
    bad_role = admin.post("/user/new", {"user_role": "emperor"})
    assert bad_role.status_code == 400 and "user_role" in bad_role.text
    bad_duration = admin.post("/key/generate", {"duration": "forever"})
    assert bad_duration.status_code in (400, 422) and "duration" in bad_duration.text
