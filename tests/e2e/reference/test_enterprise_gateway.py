"""The enterprise LLM gateway README (LiteLLM on ECS + RDS with Amazon Nova models) against
tollgate: models added at run time with ``/model/new``, the three tier teams, user keys, the
OpenAI SDK calls (plain and streamed), the admin operations, Swagger at the root and the UI login.

The README's bodies are sent as printed, except ``/model/new``, which also gets the fake
upstream's ``api_base`` (the README's models reach Bedrock through the task role). The deployment
has models in its database, as the README's does (``store_model_in_db`` / ``STORE_MODEL_IN_DB``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from string import Template
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.e2e.reference.conftest import DATABASES, Served, bearer, served
from tests.polling import wait_until

LITELLM_MASTER_KEY = "sk-enterprise-master-key"
REPLY = "Hello from tollgate's fake upstream! You said: "
NOVA = {
    "model-cheap": "us.amazon.nova-micro-v1:0",
    "model-balanced": "us.amazon.nova-lite-v1:0",
    "model-reasoning": "us.amazon.nova-pro-v1:0",
}
# What LiteLLM answers for key fields tollgate keeps no data for (LiteLLM's unset values).
LITELLM_KEY_FIELDS = {"aliases": {}, "allowed_cache_controls": [], "config": {}, "guardrails": None,
                      "model_max_budget": {}, "permissions": {}, "send_invite_email": None}
TEAMS = {"drafting": ("model-cheap", 0.017), "coding": ("model-balanced", 0.033),
         "architect": ("model-reasoning", 0.067)}


class Gateway:
    def __init__(self, served_gateway: Served, upstream: str) -> None:
        self.url = served_gateway.url
        self.upstream = upstream
        self.team_ids: dict[str, str] = {}

    def admin(self, method: str, path: str, data: str | None = None) -> httpx.Response:
        # curl -X POST "$LITELLM_URL/..." -H "Authorization: Bearer $LITELLM_MASTER_KEY"
        #   -H "Content-Type: application/json" -d '...'
        return httpx.request(method, f"{self.url}{path}", headers=bearer(LITELLM_MASTER_KEY),
                             content=data, timeout=30)


@pytest.fixture(scope="module", params=DATABASES)
def gw(request: pytest.FixtureRequest, upstream: str) -> Iterator[Gateway]:
    config = {"general_settings": {"master_key": LITELLM_MASTER_KEY, "store_model_in_db": True}}
    env = {"UI_USERNAME": "admin", "UI_PASSWORD": "admin123"}
    with served(config, request.param, env) as gateway:
        gw = Gateway(gateway, upstream)
        _add_models(gw)
        _create_teams(gw)
        yield gw


def _add_models(gw: Gateway) -> None:
    # Step 6 "Add Models to LiteLLM", plus api_base: the fake upstream stands in for Bedrock.
    for name, model_id in NOVA.items():
        data = Template("""{
    "model_name": "$name",
    "litellm_params": {
      "model": "bedrock/converse/$model_id",
      "aws_region_name": "us-east-1",
      "api_base": "$api_base"
    }
  }""").substitute(name=name, model_id=model_id, api_base=gw.upstream)
        added = gw.admin("POST", "/model/new", data)
        assert added.status_code == 200, added.text


def _create_teams(gw: Gateway) -> None:
    # Step 7 "Or manually": the three tier teams.
    for alias, (model, budget) in TEAMS.items():
        data = Template("""{
    "team_alias": "$alias",
    "models": ["$model"],
    "max_budget": $budget,
    "budget_duration": "1d"
  }""").substitute(alias=alias, model=model, budget=budget)
        created = gw.admin("POST", "/team/new", data)
        assert created.status_code == 200, created.text
        team = created.json()
        assert (team["team_alias"], team["models"], team["max_budget"], team["budget_duration"]) == (
            alias, [model], budget, "1d")
        gw.team_ids[alias] = team["team_id"]


def _generate(gw: Gateway, tier: str = "drafting", user: str = "user@example.com") -> dict[str, Any]:
    # Step 8 "generate keys manually", with "team_id": "drafting" as printed: the team's alias
    # (/team/new gave the team a generated id), which tollgate resolves to that team. Key aliases
    # are unique (as in LiteLLM), so each user's key is named after the user rather than "User Name".
    data = Template("""{
    "user_id": "$user",
    "team_id": "$tier",
    "key_alias": "$alias"
  }""").substitute(user=user, tier=tier, alias=f"{user} {uuid.uuid4().hex[:6]}")
    created = gw.admin("POST", "/key/generate", data)
    assert created.status_code == 200, created.text
    assert created.json()["team_id"] == gw.team_ids[tier]
    return dict(created.json())


def _user_key(gw: Gateway, tier: str = "drafting", user: str = "user@example.com") -> str:
    return str(_generate(gw, tier, user)["key"])


def test_the_key_answer_has_litellms_fields(gw: Gateway) -> None:
    created = _generate(gw, "coding", "fields@example.com")
    assert {name: created[name] for name in LITELLM_KEY_FIELDS} == LITELLM_KEY_FIELDS
    assert created["key"].startswith("sk-") and created["token"] == created["token_id"]


def test_check_user_spend(gw: Gateway) -> None:
    key = _user_key(gw, "drafting", "spender@example.com")
    assert httpx.post(f"{gw.url}/chat/completions", headers=bearer(key), timeout=30,
                      json={"model": "model-cheap", "messages": [{"role": "user", "content": "hi"}]}
                      ).status_code == 200

    def spend() -> float:
        # curl -s "$LITELLM_URL/user/info" -H "Authorization: Bearer $LITELLM_MASTER_KEY"
        #   -H "Content-Type: application/json" -d '{"user_ids": ["user@example.com"]}' | jq
        info = gw.admin("POST", "/user/info", '{"user_ids": ["spender@example.com"]}')  # curl -d: a POST
        assert info.status_code == 200, info.text
        assert info.json()["user_id"] == "spender@example.com"
        assert [k["team_id"] for k in info.json()["keys"]] == [gw.team_ids["drafting"]]
        return float(info.json()["user_info"]["spend"])

    assert wait_until(spend, timeout=15, what="the user's spend is recorded") > 0


def test_chat_completions_curl_with_a_user_key(gw: Gateway) -> None:
    user_api_key = _user_key(gw)
    response = httpx.post(f"{gw.url}/chat/completions", headers=bearer(user_api_key), timeout=30, content="""{
    "model": "model-cheap",
    "messages": [{"role": "user", "content": "Hello!"}]
  }""")
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == REPLY + "Hello!"


def test_python_sdk_and_streaming(gw: Gateway) -> None:
    client = OpenAI(api_key=_user_key(gw), base_url=gw.url)  # no /v1, as in the README
    response = client.chat.completions.create(
        model="model-cheap",
        messages=[{"role": "user", "content": "Hello!"}]
    )
    assert response.choices[0].message.content == REPLY + "Hello!"

    stream = client.chat.completions.create(
        model="model-cheap",
        messages=[{"role": "user", "content": "Tell me a story"}],
        stream=True
    )
    printed = []
    for chunk in stream:
        if chunk.choices[0].delta.content:
            printed.append(chunk.choices[0].delta.content)
    assert "".join(printed) == REPLY + "Tell me a story"


@pytest.mark.parametrize(("tier", "allowed"), [("drafting", "model-cheap"), ("architect", "model-reasoning")])
def test_a_tier_reaches_only_its_model(gw: Gateway, tier: str, allowed: str) -> None:
    key = _user_key(gw, tier, f"{tier}-user@example.com")
    for model in NOVA:
        response = httpx.post(f"{gw.url}/chat/completions", headers=bearer(key), timeout=30,
                              json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
        if model == allowed:
            assert response.status_code == 200, response.text
        else:
            assert response.status_code == 403, response.text
            assert response.json()["error"]["code"] == "model_access_denied"


def test_master_key_test_request(gw: Gateway) -> None:
    # Troubleshooting: "Test with actual chat completions instead".
    response = gw.admin("POST", "/chat/completions",
                        '{"model": "model-cheap", "messages": [{"role": "user", "content": "test"}]}')
    assert response.status_code == 200, response.text


def test_list_models_keys_and_teams(gw: Gateway) -> None:
    key = _user_key(gw, "coding", "lister@example.com")
    models = gw.admin("GET", "/models")
    assert models.status_code == 200
    assert {m["id"] for m in models.json()["data"]} == set(NOVA)
    keys = gw.admin("GET", "/key/list")
    assert keys.status_code == 200
    listed = keys.json()["keys"]
    info = gw.admin("GET", f"/key/info?key={key}").json()
    assert info["info"]["token"] in listed
    teams = gw.admin("GET", "/team/list")
    assert teams.status_code == 200
    assert {t["team_alias"] for t in teams.json()} == set(TEAMS)


def test_health_check_probes_the_models(gw: Gateway) -> None:
    health = gw.admin("GET", "/health")
    assert health.status_code == 200, health.text
    assert {e["model_name"] for e in health.json()["healthy_endpoints"]} == set(NOVA)
    assert health.json()["unhealthy_endpoints"] == []


def test_delete_a_key(gw: Gateway) -> None:
    key = _user_key(gw, "coding", "leaver@example.com")
    deleted = gw.admin("POST", "/key/delete", Template('{"keys": ["$key"]}').substitute(key=key))
    assert deleted.status_code == 200, deleted.text
    refused = httpx.post(f"{gw.url}/chat/completions", headers=bearer(key), timeout=30,
                         json={"model": "model-balanced", "messages": [{"role": "user", "content": "hi"}]})
    assert refused.status_code == 401


def test_delete_a_model(gw: Gateway) -> None:
    added = gw.admin("POST", "/model/new", Template("""{
    "model_name": "model-retired",
    "litellm_params": {"model": "bedrock/converse/us.amazon.nova-micro-v1:0", "aws_region_name": "us-east-1",
                       "api_base": "$api_base"}
  }""").substitute(api_base=gw.upstream))
    assert added.status_code == 200, added.text
    model_id = added.json()["model_info"]["id"]
    placeholder = gw.admin("POST", "/model/delete", '{"id": "model-id-here"}')
    assert placeholder.status_code == 404
    deleted = gw.admin("POST", "/model/delete", Template('{"id": "$id"}').substitute(id=model_id))
    assert deleted.status_code == 200, deleted.text
    gone = gw.admin("POST", "/chat/completions",
                    '{"model": "model-retired", "messages": [{"role": "user", "content": "x"}]}')
    assert gone.status_code == 400


def test_swagger_at_the_root_and_the_ui_login(gw: Gateway) -> None:
    root = httpx.get(f"{gw.url}/", follow_redirects=True, timeout=10)
    assert root.status_code == 200
    assert "swagger" in root.text.lower()
    with httpx.Client(base_url=gw.url, timeout=10) as browser:
        assert browser.get("/ui", follow_redirects=True).status_code == 200
        csrf = browser.get("/ui/auth/session").json()["login_csrf"]
        login: Any = browser.post("/ui/auth/login", json={"username": "admin", "password": "admin123"},
                                  headers={"x-csrf-token": csrf})
        assert login.status_code == 200, login.text
        assert login.json()["signed_in"] is True
