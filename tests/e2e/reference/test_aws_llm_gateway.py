"""The older AWS LLM Gateway README (its own API, not LiteLLM) mapped onto tollgate's LiteLLM
admin API, as a user migrating from it would do it:

- ``DEFAULT_QUOTA_DOLLARS`` + ``DEFAULT_QUOTA_FREQUENCY=weekly`` →
  ``litellm_settings.max_internal_user_budget`` + ``internal_user_budget_duration: 7d``;
- ``DEFAULT_MODEL_ACCESS`` → ``litellm_settings.default_internal_user_params.models``;
- users create API keys with an expiration date → ``/key/generate`` with ``duration``, sent with
  the user's own key; they list and delete their keys with ``/key/list`` and ``/key/delete``;
- Manage Quotas / Manage Model Access (admins) → ``/user/update`` with ``max_budget``,
  ``budget_duration``, ``models``; Check Quota Status → ``/user/info``;
- admin APIs answer non-admins with 403, as before; the OpenAI client works with a gateway key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.reference.conftest import DATABASES, Served, bearer, chat_body, on_loopback, served
from tests.polling import wait_until

MASTER = "sk-llm-gateway-admin"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
SONNET = "anthropic.claude-3-sonnet-20240229-v1:0"
REPLY = "Hello from tollgate's fake upstream! You said: "


@pytest.fixture(scope="module", params=DATABASES)
def gw(request: pytest.FixtureRequest, upstream: str) -> Iterator[Served]:
    config = on_loopback({
        "model_list": [{"model_name": m, "litellm_params": {"model": f"bedrock/{m}"}}
                       for m in (HAIKU, SONNET)],
        "general_settings": {"master_key": MASTER},
        "litellm_settings": {
            "max_internal_user_budget": 5.0,  # DEFAULT_QUOTA_DOLLARS
            "internal_user_budget_duration": "7d",  # DEFAULT_QUOTA_FREQUENCY=weekly
            "default_internal_user_params": {"models": [HAIKU]},  # DEFAULT_MODEL_ACCESS
        },
    }, upstream)
    with served(config, request.param) as gateway:
        yield gateway


def _new_user(gw: Served, user_id: str) -> dict[str, Any]:
    created = httpx.post(f"{gw.url}/user/new", headers=bearer(MASTER), timeout=30,
                         json={"user_id": user_id, "user_role": "internal_user"})
    assert created.status_code == 200, created.text
    user: dict[str, Any] = created.json()
    return user


def _chat(gw: Served, key: str, model: str, text: str = "hi") -> httpx.Response:
    return httpx.post(f"{gw.url}/v1/chat/completions", headers=bearer(key), json=chat_body(model, text),
                      timeout=30)


def test_new_users_get_the_default_quota_and_model_access(gw: Served) -> None:
    user = _new_user(gw, "dev-defaults")
    assert (user["max_budget"], user["budget_duration"], user["models"]) == (5.0, "7d", [HAIKU])
    assert _chat(gw, user["key"], HAIKU).status_code == 200
    denied = _chat(gw, user["key"], SONNET)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "model_access_denied"


def test_users_create_list_and_delete_their_own_expiring_keys(gw: Served) -> None:
    user = _new_user(gw, "dev-keys")
    mine = bearer(user["key"])
    made = httpx.post(f"{gw.url}/key/generate", headers=mine,
                      json={"key_alias": "notebook", "duration": "1s"})
    assert made.status_code == 200, made.text
    assert made.json()["expires"] is not None
    short_lived = made.json()["key"]

    def refused() -> httpx.Response | None:
        answer = _chat(gw, short_lived, HAIKU)
        return answer if answer.status_code != 200 else None

    answer = wait_until(refused, timeout=15, what="the key expired")
    assert answer.status_code == 401
    assert "expired" in answer.json()["error"]["message"]

    kept = httpx.post(f"{gw.url}/key/generate", headers=mine, json={"key_alias": "laptop"}).json()
    listed = httpx.get(f"{gw.url}/key/list", headers=mine).json()["keys"]
    assert kept["token"] in listed and made.json()["token"] in listed
    assert httpx.post(f"{gw.url}/key/delete", headers=mine, json={"keys": [kept["key"]]}).status_code == 200
    assert _chat(gw, kept["key"], HAIKU).status_code == 401


def test_admin_pages_are_admin_only(gw: Served) -> None:
    user = _new_user(gw, "dev-nonadmin")
    for path, body in [("/user/update", {"user_id": "dev-nonadmin", "max_budget": 1000}),
                       ("/user/new", {"user_id": "someone-else"}),
                       ("/team/new", {"team_alias": "mine"})]:
        refused = httpx.post(f"{gw.url}{path}", headers=bearer(user["key"]), json=body, timeout=30)
        assert refused.status_code == 403, (path, refused.text)


def test_admins_set_quota_and_model_access_and_check_quota_status(gw: Served) -> None:
    user = _new_user(gw, "dev-managed")
    updated = httpx.post(f"{gw.url}/user/update", headers=bearer(MASTER), timeout=30, json={
        "user_id": "dev-managed", "max_budget": 10.0, "budget_duration": "7d", "models": [HAIKU, SONNET]})
    assert updated.status_code == 200, updated.text
    assert _chat(gw, user["key"], SONNET).status_code == 200
    info = httpx.get(f"{gw.url}/user/info", headers=bearer(MASTER), params={"user_id": "dev-managed"}).json()
    status = info["user_info"]
    assert (status["max_budget"], status["budget_duration"]) == (10.0, "7d")
    assert status["budget_reset_at"] is not None

    def spend() -> float:  # spend is recorded off the request path
        return float(httpx.get(f"{gw.url}/user/info", headers=bearer(MASTER),
                               params={"user_id": "dev-managed"}).json()["user_info"]["spend"])

    assert wait_until(spend, timeout=15, what="the user's spend is recorded") > 0


def test_an_exhausted_quota_refuses_requests(gw: Served) -> None:
    user = _new_user(gw, "dev-broke")
    assert _chat(gw, user["key"], HAIKU).status_code == 200
    httpx.post(f"{gw.url}/user/update", headers=bearer(MASTER),
               json={"user_id": "dev-broke", "max_budget": 0.0000001, "budget_duration": "7d"})

    def refusal() -> httpx.Response | None:  # once the first request's spend is counted
        answer = _chat(gw, user["key"], HAIKU)
        return answer if answer.status_code != 200 else None

    refused = wait_until(refusal, timeout=15, what="the exhausted quota refuses")
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "budget_exceeded"


def test_openai_client_with_a_gateway_key_streams(gw: Served) -> None:
    user = _new_user(gw, "dev-notebook")
    client = openai.OpenAI(api_key=user["key"], base_url=f"{gw.url}/v1", max_retries=0)
    stream = client.chat.completions.create(model=HAIKU, stream=True,
                                            messages=[{"role": "user", "content": "write a haiku"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == REPLY + "write a haiku"
