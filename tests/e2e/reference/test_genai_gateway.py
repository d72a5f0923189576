"""The AWS GenAI Gateway README against tollgate: its config snippets (gathered in
``genai-gateway-snippets.yaml``), the OpenAI usage example, the A/B split and load balancing, the
``/user/new`` calls with budgets, limits and model access (and their enforcement), request
priority, the Bedrock interface through boto3 (the README's script as printed) and Okta JWT users
minting their own keys.

Okta: the README's middleware reads ``OKTA_ISSUER`` / ``OKTA_AUDIENCE``; tollgate's answer is
LiteLLM's JWT settings (``enable_jwt_auth``, ``JWT_PUBLIC_KEY_URL``, ``JWT_ISSUER``,
``JWT_AUDIENCE``, docs/jwt.md), added to the config here, with a local issuer standing in for Okta.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import openai
import pytest
from botocore import UNSIGNED
from botocore.client import Config

from tests.auth.oidc_issuer import LocalIssuer, serve_issuer
from tests.e2e.reference.conftest import DATABASES, Served, bearer, chat_body, load, on_loopback, served

GATEWAY_API_KEY = "sk-genai-master-key"
REPLY = "Hello from tollgate's fake upstream! You said: "
SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture(scope="module")
def okta() -> Iterator[LocalIssuer]:
    with serve_issuer() as issuer:
        yield issuer


@pytest.fixture(scope="module", params=DATABASES)
def gw(request: pytest.FixtureRequest, upstream: str, okta: LocalIssuer) -> Iterator[Served]:
    config = on_loopback(load("genai-gateway-snippets.yaml"), upstream)
    config["general_settings"].update(
        enable_jwt_auth=True,
        litellm_jwtauth={"user_id_jwt_field": "sub", "user_email_jwt_field": "email", "user_id_upsert": True},
    )
    env = {"LITELLM_MASTER_KEY": GATEWAY_API_KEY, "JWT_PUBLIC_KEY_URL": f"{okta.url}/jwks",
           "JWT_ISSUER": okta.url, "JWT_AUDIENCE": "api://default"}
    with served(config, request.param, env) as gateway:
        yield gateway


def _deployment_ids(gw: Served, group: str) -> dict[str, str]:
    """deployment id → its LiteLLM model string, for one model group."""
    info = httpx.get(f"{gw.url}/model/info", headers=bearer(GATEWAY_API_KEY), timeout=10).json()["data"]
    return {d["model_info"]["id"]: d["litellm_params"]["model"] for d in info if d["model_name"] == group}


def test_openai_usage_instructions(gw: Served) -> None:
    client = openai.OpenAI(api_key="anything", base_url=gw.url, max_retries=0)  # set proxy to base_url
    with pytest.raises(openai.AuthenticationError):  # a gateway with a master key wants a real key
        client.chat.completions.create(model=SONNET, messages=[{"role": "user", "content": "hi"}])
    client = openai.OpenAI(api_key=GATEWAY_API_KEY, base_url=gw.url, max_retries=0)
    response = client.chat.completions.create(model=SONNET, messages=[
        {
            "role": "user",
            "content": "this is a test request, write a short poem"
        }
    ])
    assert response.choices[0].message.content == REPLY + "this is a test request, write a short poem"


def _served_by(gw: Served, model: str, count: int) -> Counter[str]:
    served_by: Counter[str] = Counter()
    with httpx.Client(timeout=30, headers=bearer(GATEWAY_API_KEY)) as http:
        for n in range(count):
            response = http.post(f"{gw.url}/v1/chat/completions", json=chat_body(model, f"request {n}"))
            assert response.status_code == 200, response.text
            served_by[response.headers["x-litellm-model-id"]] += 1
    return served_by


def test_ab_split_nine_to_one(gw: Served) -> None:
    deployments = _deployment_ids(gw, "gpt-4o")
    openai_id = next(i for i, model in deployments.items() if model == "openai/gpt-4o")
    served_by = _served_by(gw, "gpt-4o", 200)
    assert set(served_by) <= set(deployments)
    # weight 9 : 1 → about 180 of 200 (a 4.5-sigma band below, and at least one to Bedrock)
    assert 160 <= served_by[openai_id] <= 199, served_by


def test_one_name_three_deployments_share_the_traffic(gw: Served) -> None:
    deployments = _deployment_ids(gw, "claude-3-5-sonnet-20240620-v1:0")
    assert sorted(deployments.values()) == [
        "anthropic/claude-3-5-sonnet-20240620",
        "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
        "bedrock/anthropic.claude-3-haiku-20240307-v1:0",
    ]
    served_by = _served_by(gw, "claude-3-5-sonnet-20240620-v1:0", 60)
    assert set(served_by) == set(deployments), served_by  # rpm 1000:2000:3000 → 1/6, 1/3, 1/2


# The README's /user/new bodies, exactly as printed (four of them lack a comma after
# "internal_user", and two end with a trailing comma).
USER_NEW_BODIES = {
    "default budget": """{
     "user_email": "new_user@example.com",
     "user_role": "internal_user"
 }""",
    "budget override": """{
     "user_email": "new_user@example.com",
     "user_role": "internal_user"
     "max_budget": 1000.0,
     "budget_duration": "1mo"
 }""",
    "tpm rpm parallel": """{
     "user_email": "new_user@example.com",
     "user_role": "internal_user"
     "tpm_limit": 10000,
     "rpm_limit": 10,
     "max_parallel_requests": 2
 }""",
    "model access": """{
     "user_email": "new_user@example.com",
     "user_role": "internal_user"
     "models": ["anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-haiku-20240307-v1:0"],
 }""",
    "per-model limits": """{
     "user_email": "new_user@example.com",
     "user_role": "internal_user"
     "model_rpm_limit": {"anthropic.claude-3-5-sonnet-20240620-v1:0": 1, "anthropic.claude-3-haiku-20240307-v1:0": 1},
     "model_tpm_limit": {"anthropic.claude-3-5-sonnet-20240620-v1:0": 10000, "anthropic.claude-3-haiku-20240307-v1:0": 20000},
 }""",  # noqa: E501 (as printed)
}


def _user_new(gw: Served, body: str) -> httpx.Response:
    # curl -X POST "$GATEWAY_URL/user/new" -H "Content-Type: application/json"
    #   -H "Authorization: Bearer $GATEWAY_API_KEY" -d '...'
    return httpx.post(f"{gw.url}/user/new", headers=bearer(GATEWAY_API_KEY), content=body, timeout=30)


def _corrected(name: str, body: str) -> str:
    """The body with the missing comma added and the trailing one removed; one e-mail per user."""
    body = re.sub(r'"internal_user"\n', '"internal_user",\n', body)
    body = re.sub(r",\n }$", "\n }", body)
    return body.replace("new_user@example.com", f"{name.replace(' ', '-')}@example.com")


@pytest.mark.parametrize("name", [n for n in USER_NEW_BODIES if n != "default budget"])
def test_user_new_as_printed_is_a_clear_400(gw: Served, name: str) -> None:
    response = _user_new(gw, USER_NEW_BODIES[name])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("request body is not valid JSON")
    assert error["type"] == "invalid_request_error"


@pytest.fixture(scope="module")
def users(gw: Served) -> dict[str, dict[str, Any]]:
    created = {}
    for name, body in USER_NEW_BODIES.items():
        response = _user_new(gw, _corrected(name, body))
        assert response.status_code == 200, response.text
        created[name] = response.json()
    return created


def _user_info(gw: Served, user_id: str) -> dict[str, Any]:
    response = httpx.get(f"{gw.url}/user/info", params={"user_id": user_id}, headers=bearer(GATEWAY_API_KEY))
    assert response.status_code == 200, response.text
    info: dict[str, Any] = response.json()["user_info"]
    return info


def test_user_new_returns_a_key_and_the_budget(users: dict[str, dict[str, Any]]) -> None:
    default = users["default budget"]
    # "Copy the `key` value and provide it to your user"
    assert default["key"].startswith("sk-")
    assert default["user_email"] == "default-budget@example.com"
    assert default["user_role"] == "internal_user"
    # litellm_settings.max_internal_user_budget / internal_user_budget_duration apply by default
    assert (default["max_budget"], default["budget_duration"]) == (1000000000.0, "1mo")
    override = users["budget override"]
    assert (override["max_budget"], override["budget_duration"]) == (1000.0, "1mo")


def test_limits_are_kept_as_a_get_on_the_user_shows(gw: Served, users: dict[str, dict[str, Any]]) -> None:
    limits = _user_info(gw, users["tpm rpm parallel"]["user_id"])
    assert (limits["tpm_limit"], limits["rpm_limit"], limits["max_parallel_requests"]) == (10000, 10, 2)
    per_model = _user_info(gw, users["per-model limits"]["user_id"])
    assert per_model["model_rpm_limit"] == {SONNET: 1, HAIKU: 1}
    assert per_model["model_tpm_limit"] == {SONNET: 10000, HAIKU: 20000}
    access = _user_info(gw, users["model access"]["user_id"])
    assert access["models"] == [SONNET, HAIKU]


def _status(gw: Served, key: str, model: str) -> int:
    return httpx.post(f"{gw.url}/v1/chat/completions", headers=bearer(key), json=chat_body(model),
                      timeout=30).status_code


def test_user_limits_are_enforced(gw: Served, users: dict[str, dict[str, Any]]) -> None:
    key = users["tpm rpm parallel"]["key"]
    assert [_status(gw, key, HAIKU) for _ in range(11)] == [200] * 10 + [429]  # rpm_limit 10
    key = users["per-model limits"]["key"]
    assert [_status(gw, key, SONNET) for _ in range(2)] == [200, 429]  # model_rpm_limit 1 for Sonnet
    assert _status(gw, key, HAIKU) == 200  # Haiku has its own
    key = users["model access"]["key"]
    assert (_status(gw, key, SONNET), _status(gw, key, HAIKU), _status(gw, key, "gpt-4o")) == (200, 200, 403)


def test_request_priority_is_accepted(gw: Served) -> None:
    body = {"model": "gpt-4o", "priority": 0,
            "messages": [{"role": "user", "content": "what is the meaning of the universe? 1234"}]}
    response = httpx.post(f"{gw.url}/v1/chat/completions", headers=bearer(GATEWAY_API_KEY), json=body,
                          timeout=30)
    assert response.status_code == 200, response.text


def create_bedrock_client() -> Any:
    """The README's script, as printed (reads API_ENDPOINT, API_KEY and AWS_REGION)."""

    # Get configuration from environment variables
    endpoint = os.getenv("API_ENDPOINT")
    api_key = os.getenv("API_KEY")
    region = os.getenv("AWS_REGION")

    if not all([endpoint, api_key, region]):
        raise ValueError(
            "Missing required environment variables: API_ENDPOINT, API_KEY, AWS_REGION"
        )

    # Initialize session and configure client
    session = boto3.Session()
    client_config = Config(
        signature_version=UNSIGNED,  # Disable SigV4 signing
        retries={"max_attempts": 10, "mode": "standard"},
    )

    # Create the Bedrock client
    client = session.client(
        "bedrock-runtime",
        endpoint_url=endpoint,
        config=client_config,
        region_name=region,
    )

    # Define authorization header handler
    def add_authorization_header(request: Any, **kwargs: Any) -> None:
        request.headers["Authorization"] = f"Bearer {api_key}"

    # Register the event handler
    client.meta.events.register("request-created.*", add_authorization_header)

    return client


def test_bedrock_interface_through_boto3(gw: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_ENDPOINT", f"{gw.url}/bedrock")  # "Should be https://<Your-Proxy-Endpoint>/bedrock"
    monkeypatch.setenv("API_KEY", GATEWAY_API_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    bedrock_client = create_bedrock_client()
    messages = [{"role": "user", "content": [{"text": "Create a list of 3 pop songs."}]}]
    model_id = "anthropic.claude-3-5-sonnet-20240620-v1:0"
    response = bedrock_client.converse(modelId=model_id, messages=messages)
    assert response["output"]["message"]["content"][0]["text"] == REPLY + "Create a list of 3 pop songs."
    assert response["stopReason"] == "end_turn"
    assert response["usage"]["totalTokens"] > 0

    stream = bedrock_client.converse_stream(modelId=model_id, messages=messages)["stream"]
    events = list(stream)
    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events if "contentBlockDelta" in e)
    assert text == REPLY + "Create a list of 3 pop songs."
    assert "messageStop" in events[-2] and "metadata" in events[-1]


def test_okta_user_mints_keys_for_itself(gw: Served, okta: LocalIssuer) -> None:
    okta_jwt = okta.mint(okta.claims(sub="testuser@mycompany.com", email="testuser@mycompany.com",
                                     aud="api://default"))
    # The README's first step, /user/new with the Okta JWT, is an admin write in tollgate: a clear
    # 403. Its answer (docs/jwt.md) is the JWT itself, with user_id_upsert, and /key/generate.
    refused = httpx.post(f"{gw.url}/user/new", headers=bearer(okta_jwt), timeout=30, content="{\n }")
    assert refused.status_code == 403, refused.text
    assert "proxy admins only" in refused.json()["error"]["message"]
    # curl -X POST "$GATEWAY_URL/key/generate" -H "Authorization: Bearer $GATEWAY_API_KEY"
    #   -d '{"user_id": "testuser@mycompany.com" }'   (here with the Okta JWT itself)
    made = httpx.post(f"{gw.url}/key/generate", headers=bearer(okta_jwt), timeout=30,
                      content='{"user_id": "testuser@mycompany.com" }')
    assert made.status_code == 200, made.text
    first = made.json()
    assert first["user_id"] == "testuser@mycompany.com" and first["key"].startswith("sk-")
    # The README's response fields LiteLLM returns for things tollgate does not store:
    assert {k: first[k] for k in ("aliases", "allowed_cache_controls", "config", "permissions",
                                  "model_max_budget", "guardrails", "send_invite_email")} == {
        "aliases": {}, "allowed_cache_controls": [], "config": {}, "permissions": {},
        "model_max_budget": {}, "guardrails": None, "send_invite_email": None}
    # "You can also create additional api keys tied to your user", with the new key:
    again = httpx.post(f"{gw.url}/key/generate", headers=bearer(first["key"]), timeout=30,
                       content='{"user_id": "testuser@mycompany.com" }')
    assert again.status_code == 200, again.text
    assert again.json()["user_id"] == "testuser@mycompany.com"
    assert _status(gw, again.json()["key"], HAIKU) == 200
    # The user was created from the token, as the README's /user/new response shows it.
    user = _user_info(gw, "testuser@mycompany.com")
    assert (user["user_email"], user["user_role"]) == ("testuser@mycompany.com", "internal_user")
    assert (user["max_budget"], user["budget_duration"]) == (1000000000.0, "1mo")
