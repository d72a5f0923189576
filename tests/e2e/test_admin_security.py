"""Issue 13 (items 1, 2, 5, 6, 15, 16), issue 12 (admin API) and issue 17 (big numbers) against a real
``tollgate serve`` on a fresh SQLite file and a fresh PostgreSQL database: internal users stay within
their team and cannot undo admin controls; upstream secrets never leave; /metrics asks for a key;
an admin route authenticates before it reads a body; bad numbers and strings are 400s naming the
field while big numbers round-trip; /user/info answers every LiteLLM form; new internal users get
the configured default budget; upperbound_key_generate_params bounds every new key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.admin_env import database, gateways, run_tollgate, write_config
from tests.e2e.conftest import openai_deployment

MASTER = "sk-admin-security-master"
HEADER_SECRET = "hdr-secret-value-77"
PARAM_SECRET = "param-token-secret-88"
URL_PASSWORD = "url-pass-secret-99"
SECRETS = (MASTER, HEADER_SECRET, PARAM_SECRET, URL_PASSWORD, "sk-upstream-secret")


@dataclass
class Gate:
    url: str
    http: httpx.Client

    def call(self, method: str, path: str, key: str = MASTER, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
        return self.http.request(method, f"{self.url}{path}", headers=headers, **kwargs)

    def ok(self, method: str, path: str, key: str = MASTER, **kwargs: Any) -> Any:
        response = self.call(method, path, key, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def chat(self, key: str, model: str) -> int:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        return self.call("POST", "/v1/chat/completions", key, json=body).status_code


def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gate(request: pytest.FixtureRequest, upstream: str) -> Iterator[Gate]:
    port = upstream.rsplit(":", 1)[1]
    leaky = openai_deployment(
        "leaky", upstream, "gpt-fake",
        params={"extra_headers": {"x-upstream-auth": HEADER_SECRET}, "api_token": PARAM_SECRET,
                "api_base": f"http://svc:{URL_PASSWORD}@127.0.0.1:{port}/v1"},
    )
    with database(request.param) as db_url:
        config = {
            "model_list": [leaky, {"model_name": "local-fake", "litellm_params": {"model": "fake/local"}}],
            "general_settings": {"master_key": MASTER, "database_url": db_url, "store_model_in_db": True},
            "litellm_settings": {
                "max_internal_user_budget": 25, "internal_user_budget_duration": "1mo",
                "upperbound_key_generate_params": {"duration": "400d", "rpm_limit": 10**15},
            },
        }
        path = write_config(config)
        try:
            assert run_tollgate(["migrate", "--config", str(path)]).returncode == 0
            with gateways(config, 1) as (url,), httpx.Client(timeout=30) as http:
                yield Gate(url, http)
        finally:
            path.unlink()


def _member_with_team_key(gate: Gate) -> tuple[str, str, str]:
    """A team limited to local-fake, an internal user in it, and the user's key bound to the team."""
    team = gate.ok("POST", "/team/new", json={"models": ["local-fake"], "max_budget": 5})["team_id"]
    user = _uid("member")
    gate.ok("POST", "/user/new", json={"user_id": user, "auto_create_key": False})
    gate.ok("POST", "/team/member_add", json={"team_id": team, "member": {"user_id": user}})
    key = gate.ok("POST", "/key/generate", json={"user_id": user, "team_id": team})["key"]
    return team, user, key


def test_an_internal_user_cannot_escape_their_team(gate: Gate) -> None:
    team, _user, key = _member_with_team_key(gate)
    other_team = gate.ok("POST", "/team/new", json={})["team_id"]
    for escape in (None, other_team):
        refused = gate.call("POST", "/key/update", key, json={"key": key, "team_id": escape})
        assert refused.status_code == 403 and "team_id" in refused.text, refused.text
    assert gate.ok("GET", "/key/info", key, params={"key": key})["info"]["team_id"] == team
    assert gate.chat(key, "leaky") in (401, 403)  # still bound by the team's models
    other_org = gate.ok("POST", "/organization/new", json={})["organization_id"]
    assert gate.call("POST", "/key/generate", key, json={"organization_id": other_org}).status_code == 403
    missing = gate.call("POST", "/key/generate", key, json={"organization_id": "no-such-org"})
    assert missing.status_code == 404 and "organization" in missing.text
    assert gate.call("POST", "/key/generate", key, json={"team_id": other_team}).status_code == 403
    assert gate.call("POST", "/key/generate", key, json={"team_id": team}).status_code == 200


def test_an_internal_user_cannot_undo_admin_controls(gate: Gate) -> None:
    _team, user, own = _member_with_team_key(gate)
    key = gate.ok("POST", "/key/generate", json={
        "user_id": user, "max_budget": 1, "duration": "1d", "rpm_limit": 5, "models": ["local-fake"],
    })["key"]
    undo = [
        {"max_budget": 100}, {"max_budget": None}, {"rpm_limit": None}, {"rpm_limit": 50},
        {"models": ["local-fake", "leaky"]}, {"models": []}, {"expires": None}, {"duration": "30d"},
        {"user_id": "someone-else"}, {"organization_id": "x"},
    ]
    for change in undo:
        refused = gate.call("POST", "/key/update", own, json={"key": key, **change})
        assert refused.status_code == 403, (change, refused.text)
    for tighter in ({"rpm_limit": 3}, {"max_budget": 0.5}, {"duration": "1h"}, {"key_alias": _uid("mine")}):
        assert gate.call("POST", "/key/update", own, json={"key": key, **tighter}).status_code == 200, tighter

    gate.ok("POST", "/key/block", json={"key": key})
    unblock = gate.call("POST", "/key/update", own, json={"key": key, "blocked": False})
    assert unblock.status_code == 403 and "blocked" in unblock.text
    assert gate.call("POST", "/key/unblock", own, json={"key": key}).status_code == 403
    assert gate.chat(key, "local-fake") == 401

    for who in (own, MASTER):  # spend comes from the spend log: nobody writes it
        zeroed = gate.call("POST", "/key/update", who, json={"key": key, "spend": 0.5})
        assert zeroed.status_code == 400 and "spend" in zeroed.text
    assert gate.call("POST", "/user/update", json={"user_id": user, "spend": 3}).status_code == 400
    for path, body in (("/user/update", {"user_id": user, "max_budget": 10**6}),
                       ("/team/new", {}), ("/organization/new", {}), ("/model/new", {}),
                       ("/usage-plan/new", {"entity_id": user, "entity_type": "USER"})):
        assert gate.call("POST", path, own, json=body).status_code == 403, path


def test_upstream_secrets_never_leave(gate: Gate) -> None:
    viewer = gate.ok("POST", "/user/new", json={"user_role": "proxy_admin_viewer"})["key"]
    _team, _user, member = _member_with_team_key(gate)
    for key in (MASTER, viewer, member):
        info = gate.call("GET", "/model/info", key)
        assert info.status_code == 200
        assert not [s for s in SECRETS if s in info.text], info.text
    shown = {m["model_name"]: m for m in gate.ok("GET", "/model/info")["data"]}
    assert shown["leaky"]["litellm_params"]["extra_headers"] == {"x-upstream-auth": "********"}
    assert shown["leaky"]["litellm_params"]["api_token"] == "********"
    assert shown["leaky"]["litellm_params"]["api_base"].startswith("http://svc:********@127.0.0.1:")
    mine = gate.ok("GET", "/model/info", member)["data"]
    assert [m["model_name"] for m in mine] == ["local-fake"]  # only what the member may use
    assert "api_base" not in str(mine)
    assert [m["id"] for m in gate.ok("GET", "/v1/models", member)["data"]] == ["local-fake"]

    health = gate.call("GET", "/health")
    assert health.status_code == 200 and not [s for s in SECRETS if s in health.text], health.text
    name = _uid("db-leaky")
    added = gate.ok("POST", "/model/new", json={"model_name": name, "litellm_params": {
        "model": "openai/gpt-fake", "api_base": "http://127.0.0.1:1/v1", "api_key": "sk-db-key-1",
        "extra_headers": {"x-upstream-auth": HEADER_SECRET}}})
    assert HEADER_SECRET not in str(added)
    audit = gate.call("GET", "/audit/logs", params={"action": "/model/new"})
    assert audit.status_code == 200 and name in audit.text
    assert HEADER_SECRET not in audit.text and "sk-db-key-1" not in audit.text


def test_metrics_need_an_admin_or_viewer_key(gate: Gate) -> None:
    viewer = gate.ok("POST", "/user/new", json={"user_role": "proxy_admin_viewer"})["key"]
    _team, _user, member = _member_with_team_key(gate)
    assert gate.chat(member, "local-fake") == 200
    assert httpx.get(f"{gate.url}/metrics").status_code == 401
    assert gate.call("GET", "/metrics", member).status_code == 403
    metrics = gate.call("GET", "/metrics", viewer)
    assert metrics.status_code == 200 and "tollgate_requests_total" in metrics.text


def test_admin_routes_authenticate_before_reading_the_body(gate: Gate) -> None:
    garbage = b"{" + b"x" * 5_000_000
    for path in ("/key/generate", "/user/new", "/team/new", "/organization/new", "/model/new"):
        anonymous = gate.http.post(f"{gate.url}{path}", content=garbage,
                                   headers={"content-type": "application/json"})
        assert anonymous.status_code == 401, (path, anonymous.text[:200])
    viewer = gate.ok("POST", "/user/new", json={"user_role": "proxy_admin_viewer"})["key"]
    json_type = {"content-type": "application/json"}
    refused = gate.call("POST", "/team/new", viewer, content=garbage, headers=json_type)
    assert refused.status_code == 403
    malformed = gate.call("POST", "/key/generate", content=b'{"models": [', headers=json_type)
    assert malformed.status_code == 400 and "not valid JSON" in malformed.json()["error"]["message"]


BIG_TOKENS = 10**15
BIG_DOLLARS = 10**12


def test_big_numbers_round_trip_on_every_write_route(gate: Gate) -> None:
    limits = {"tpm_limit": BIG_TOKENS, "rpm_limit": BIG_TOKENS, "max_parallel_requests": BIG_TOKENS,
              "max_budget": BIG_DOLLARS, "soft_budget": BIG_DOLLARS, "model_tpm_limit": {"m": BIG_TOKENS}}
    org = gate.ok("POST", "/organization/new", json=limits)
    team = gate.ok("POST", "/team/new", json={**limits, "organization_id": org["organization_id"]})
    user = gate.ok("POST", "/user/new", json={**limits, "auto_create_key": False})
    key = gate.ok("POST", "/key/generate", json=limits)
    for created in (org, team, user, key):
        assert created["tpm_limit"] == BIG_TOKENS and created["max_budget"] == BIG_DOLLARS
    assert gate.ok("GET", "/organization/info", params={"organization_id": org["organization_id"]})[
        "tpm_limit"] == BIG_TOKENS
    assert gate.ok("GET", "/key/info", params={"key": key["key"]})["info"]["max_budget"] == BIG_DOLLARS
    for path, ref in (("/organization/update", {"organization_id": org["organization_id"]}),
                      ("/team/update", {"team_id": team["team_id"]}),
                      ("/user/update", {"user_id": user["user_id"]}),
                      ("/key/update", {"key": key["key"]})):
        assert gate.ok("POST", path, json={**ref, "rpm_limit": BIG_TOKENS})["rpm_limit"] == BIG_TOKENS
    plan = {"entity_id": user["user_id"], "entity_type": "USER",
            "default_limits": {"tpm": BIG_TOKENS},
            "budgets": [{"max_budget": BIG_DOLLARS, "duration": "1mo"}]}
    assert gate.ok("POST", "/usage-plan/new", json=plan)["default_limits"]["tpm"] == BIG_TOKENS


@pytest.mark.parametrize("path", ["/organization/new", "/team/new", "/user/new", "/key/generate"])
@pytest.mark.parametrize(("field", "value"), [
    ("tpm_limit", 10**16), ("tpm_limit", 10**30), ("rpm_limit", -1), ("max_parallel_requests", 1e20),
    ("max_budget", 10**13), ("max_budget", "lots"), ("max_budget", "NaN"), ("soft_budget", -0.5),
])
def test_bad_numbers_are_400s_naming_the_field(gate: Gate, path: str, field: str, value: Any) -> None:
    response = gate.call("POST", path, json={field: value})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == field


def test_bad_strings_and_queries_are_400s(gate: Gate) -> None:
    bad_bodies = (
        ("/key/generate", {"key_alias": "a\x00b"}), ("/user/new", {"user_id": "u\x00"}),
        ("/team/new", {"metadata": {"k": ["\x00"]}}),
        ("/organization/new", {"organization_alias": "x" * 300}),
        ("/model/new", {"model_name": "evil\r\nX-Injected: 1", "litellm_params": {"model": "fake/x"}}),
        ("/model/new", {"model_name": "ok", "litellm_params": {"model": "openai/x\n"}}),
    )
    for path, body in bad_bodies:
        response = gate.call("POST", path, json=body)
        assert response.status_code == 400, (path, body, response.text)
    for params in ({"page": "1e20"}, {"page": str(10**20)}, {"page": "0"}, {"user_id": "a\x00b"}):
        response = gate.call("GET", "/key/list", params=params)
        assert response.status_code == 400, (params, response.text)
    assert gate.call("GET", "/spend/logs", params={"page": str(10**20)}).status_code == 400
    # The web UI's read endpoints take the same care.
    for path in ("/ui/api/teams", "/ui/api/users", "/ui/api/organizations", "/ui/api/keys", "/spend/logs/ui"):
        for params in ({"page": str(10**20)}, {"search": "a\x00b"}, {"team_id": "t\x00"}):
            response = gate.call("GET", path, params=params)
            assert response.status_code == 400, (path, params, response.text)


def test_user_info_answers_every_litellm_form(gate: Gate) -> None:
    first = gate.ok("POST", "/user/new", json={"user_id": _uid("info")})
    second = gate.ok("POST", "/user/new", json={"user_id": _uid("info")})
    a, b = first["user_id"], second["user_id"]
    assert gate.ok("GET", "/user/info", params={"user_id": a})["user_info"]["user_id"] == a
    both = gate.ok("GET", "/user/info", params={"user_ids": f"{a},{b}"})
    assert [u["user_id"] for u in both["users"]] == [a, b]
    for method in ("GET", "POST"):
        assert gate.ok(method, "/user/info", json={"user_ids": [a]})["user_id"] == a
    mine = gate.ok("GET", "/user/info", first["key"])
    assert mine["user_id"] == a and [k["token"] for k in mine["keys"]] == [first["token"]]
    everything = gate.ok("GET", "/user/info")
    assert everything["user_id"] is None and first["token"] in {k["token"] for k in everything["keys"]}
    assert gate.call("GET", "/user/info", first["key"], params={"user_id": b}).status_code == 403


def test_new_internal_users_get_the_default_budget(gate: Gate) -> None:
    plain = gate.ok("POST", "/user/new", json={"auto_create_key": False})
    assert (plain["max_budget"], plain["budget_duration"]) == (25, "1mo")
    own = gate.ok("POST", "/user/new", json={"max_budget": 3, "auto_create_key": False})
    assert own["max_budget"] == 3
    admin = gate.ok("POST", "/user/new", json={"user_role": "proxy_admin", "auto_create_key": False})
    assert admin["max_budget"] is None
    team = gate.ok("POST", "/team/new", json={})["team_id"]
    added = gate.ok("POST", "/team/member_add", json={"team_id": team, "member": {"user_id": _uid("new")}})
    assert added["updated_users"][0]["max_budget"] == 25


def test_upperbound_key_generate_params_bound_every_new_key(gate: Gate) -> None:
    bounded = gate.ok("POST", "/key/generate", json={})
    assert bounded["expires"] is not None and bounded["rpm_limit"] == BIG_TOKENS
    over = gate.call("POST", "/key/generate", json={"duration": "500d"})
    assert over.status_code == 400 and "duration is over max limit" in over.text
    raised = gate.call("POST", "/key/update", json={"key": bounded["key"], "duration": "500d"})
    assert raised.status_code == 400 and "duration is over max limit" in raised.text
    gate.ok("POST", "/key/update", json={"key": bounded["key"], "duration": "30d"})  # within the bound
