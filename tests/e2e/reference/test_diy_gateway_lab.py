"""The DIY LLM gateway lab against tollgate: the usage plan (``usage-plan.json``) posted to
``/usage-plan/new`` and its throttling loop, the OpenAI-format payload with the lab's identifier
header, the Bedrock Converse passthrough called with ``requests`` and an OAuth client-credentials
token, boto3 unsigned with the token added by a ``before-send`` hook, and pydantic-ai and
LangChain over that client.

Stand-ins: a Cognito-like token endpoint (client credentials → a JWT from a local issuer) in place
of the platform's Cognito and Secrets Manager, and the gateway's loopback address as ``dns_name``.
The platform serves the gateway under ``/llm-gateway``: the gateway runs with
``SERVER_ROOT_PATH=/llm-gateway``, so the lab's URLs are used as printed; the calls the lab makes
without the prefix (and the start-up probe) show the bare paths still answer, as in LiteLLM.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextvars import ContextVar
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import boto3
import botocore
import httpx
import pytest
import requests
from botocore.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.auth.oidc_issuer import LocalIssuer, serve_issuer
from tests.e2e.reference.conftest import DATABASES, Served, bearer, chat_body, fixture, on_loopback, served
from tests.fakes.server import run_app_in_thread

MASTER = "sk-diy-lab-master"
CLIENT_ID = "m2m-agent-platform"
CLIENT_SECRET = secrets.token_urlsafe(16)
REPLY = "Hello from tollgate's fake upstream! You said: "
MODEL_ID = "anthropic.claude-3-sonnet-20240229-v1:0"


def cognito_token_endpoint(issuer: LocalIssuer) -> Starlette:
    """``POST /oauth2/token`` with ``grant_type=client_credentials``, as Cognito answers it."""

    async def token(request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        # A Cognito access token: no aud, the client id as sub and client_id, the granted scope.
        claims = issuer.claims(aud=None, sub=CLIENT_ID, client_id=CLIENT_ID, token_use="access",
                               scope=form.get("scope", ""))
        return JSONResponse({"access_token": issuer.mint(claims), "token_type": "Bearer", "expires_in": 3600})

    return Starlette(routes=[Route("/oauth2/token", token, methods=["POST"])])


@pytest.fixture(scope="module")
def secret_value_dict() -> Iterator[dict[str, Any]]:
    """What the lab reads from Secrets Manager ('agent-platform-123-m2m-credentials')."""
    with serve_issuer() as issuer, run_app_in_thread(cognito_token_endpoint(issuer)) as cognito:
        yield {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "scopes": "llm-gateway/invoke",
               "token_url": f"{cognito}/oauth2/token", "issuer": issuer}


@pytest.fixture(scope="module", params=DATABASES)
def gw(request: pytest.FixtureRequest, upstream: str, secret_value_dict: dict[str, Any]) -> Iterator[Served]:
    issuer: LocalIssuer = secret_value_dict["issuer"]
    config = on_loopback({
        "model_list": [
            {"model_name": MODEL_ID, "litellm_params": {"model": f"bedrock/{MODEL_ID}"}},
            {"model_name": "nova-micro", "litellm_params": {"model": "bedrock/us.amazon.nova-micro-v1:0"}},
        ],
        "general_settings": {
            "master_key": MASTER,
            "enable_jwt_auth": True,
            "litellm_jwtauth": {
                "issuers": [{"issuer": issuer.url, "audience": CLIENT_ID, "jwks_url": f"{issuer.url}/jwks"}],
                "required_scopes": ["llm-gateway/invoke"],
            },
        },
    }, upstream)
    with served(config, request.param, {"SERVER_ROOT_PATH": "/llm-gateway"}) as gateway:
        yield gateway


def dns_name_of(gw: Served) -> str:
    """The load balancer's DNS name the lab looks up: here, the gateway's loopback address."""
    return gw.url.removeprefix("http://")


def get_token(secret_value_dict: dict[str, Any]) -> str:
    """The lab's ``get_token()``, as printed."""
    client_id = secret_value_dict.get('client_id')
    client_secret = secret_value_dict.get('client_secret')
    token_url = secret_value_dict.get('token_url')
    scopes = secret_value_dict.get('scopes')

    data={
        'grant_type': 'client_credentials',
        'client_id': client_id,
        'client_secret': client_secret,
        'scope': scopes
    }

    response = requests.post(
        token_url,
        headers={'Content-Type': 'application/x-www-form-urlencoded'},
        data=data
    )

    token_data = response.json()
    # Extract the access token
    token = token_data['access_token']
    return str(token)


def construct_auth_header(token: str) -> str:
    return f'Bearer {token}'


def test_usage_plan_is_stored_as_posted(gw: Served) -> None:
    plan = json.loads(fixture("usage-plan.json").read_text())
    created = httpx.post(f"{gw.url}/usage-plan/new", headers=bearer(MASTER), json=plan, timeout=30)
    assert created.status_code == 200, created.text
    info = httpx.get(f"{gw.url}/usage-plan/info", headers=bearer(MASTER),
                     params={"entity_id": "123", "entity_type": "USER"}, timeout=30)
    assert info.status_code == 200, info.text
    assert info.json() == created.json()
    assert info.json()["default_limits"] == {"input_tpm": 40000, "output_tpm": 10000, "rpm": 60}


def test_the_labs_throttling_loop(gw: Served) -> None:
    plan = json.loads(fixture("usage-plan.json").read_text())
    plan["entity_id"] = "throttled-123"
    assert httpx.post(f"{gw.url}/usage-plan/new", headers=bearer(MASTER), json=plan).status_code == 200
    made = httpx.post(f"{gw.url}/key/generate", headers=bearer(MASTER), json={"user_id": "throttled-123"})
    key = made.json()["key"]
    # for i in range(10): check_limit(plan, model_id="nova-micro", est_input=5500, est_output=500)
    prompt = "word " * 4400  # 22,000 characters ≈ 5,500 tokens
    statuses = []
    for _ in range(10):
        body = {"model": "nova-micro", "max_tokens": 500, "messages": [{"role": "user", "content": prompt}]}
        response = httpx.post(f"{gw.url}/v1/chat/completions", headers=bearer(key), json=body, timeout=30)
        statuses.append(response.status_code)
        if response.status_code == 200:
            assert response.json()["usage"]["prompt_tokens"] == 5500
            assert response.json()["usage"]["completion_tokens"] == 500
        else:
            assert "input_tpm" in response.json()["error"]["message"]
            assert int(response.headers["retry-after"]) > 0
    # input_tpm 40,000, LiteLLM's rule (docs/enforcement.md): a request is admitted while the window
    # is below the limit. After seven (38,500) the eighth still is and takes it to 44,000; the ninth
    # and tenth are refused.
    assert statuses == [200] * 8 + [429] * 2


def test_openai_payload_with_the_identifier_header(gw: Served) -> None:
    completion_compatible_payload = {
        "model": "bedrock/anthropic.claude-3-sonnet-20240229-v1:0",
        "messages": [{ "content": "Hello, how are you?","role": "user"}]
    }
    response = httpx.post(f"{gw.url}/chat/completions", json=completion_compatible_payload, timeout=30,
                          headers={**bearer(MASTER), "X-IDENTIFIER": "whatever your identifier is"})
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == REPLY + "Hello, how are you?"


def test_converse_passthrough_with_an_oauth_token(gw: Served, secret_value_dict: dict[str, Any]) -> None:
    auth_header = construct_auth_header(get_token(secret_value_dict))
    model_id = "anthropic.claude-3-sonnet-20240229-v1:0"
    bedrock_payload = {
        "messages": [{ "content": [{'text': 'hello how are you?'}], "role": "user"}]
    }
    dns_name = dns_name_of(gw)
    response = requests.post(
        f'http://{dns_name}/llm-gateway/model/{model_id}/converse',
        headers={ 'Authorization': auth_header },
        json=bedrock_payload,
        timeout=5
    )
    assert response.status_code == 200, response.text
    assert response.json()["output"]["message"]["content"][0]["text"] == REPLY + "hello how are you?"
    # call_gateway(): the Converse request the platform's converter builds, with a system prompt.
    gateway_request = {"messages": [{"role": "user", "content": [{"text": "Hello, how are you?"}]}],
                       "system": [{"text": "You are a helpful assistant."}],
                       "inferenceConfig": {"temperature": 0.5}}
    response = requests.post(f'http://{dns_name}/llm-gateway/model/{model_id}/converse',
                             headers={'Authorization': auth_header}, json=gateway_request, timeout=5)
    assert response.status_code == 200, response.text
    assert response.json()["stopReason"] == "end_turn"


def test_a_token_without_the_scope_is_refused(gw: Served, secret_value_dict: dict[str, Any]) -> None:
    unscoped = {**secret_value_dict, "scopes": "other/scope"}
    response = requests.post(f'http://{dns_name_of(gw)}/llm-gateway/model/{MODEL_ID}/converse',
                             headers={'Authorization': construct_auth_header(get_token(unscoped))},
                             json={"messages": [{"content": [{"text": "hi"}], "role": "user"}]}, timeout=5)
    assert response.status_code == 403
    assert response.headers["x-amzn-errortype"].startswith("AccessDeniedException")


@pytest.fixture(scope="module")
def client(gw: Served, secret_value_dict: dict[str, Any]) -> Any:
    """The lab's configured boto3 client: unsigned, the token added by a before-send hook."""
    token_var: ContextVar[str] = ContextVar('token')
    token_var.set(get_token(secret_value_dict))

    def _add_headers(request: Any, **kwargs: Any) -> None:
        token: str = token_var.get()
        request.headers['Authorization'] = f"Bearer {token}"

    config = Config(
        retries={'max_attempts': 1},
        signature_version=botocore.UNSIGNED
    )
    dns_name = dns_name_of(gw)
    endpoint_url = f'http://{dns_name}/llm-gateway'
    client = boto3.client(
        'bedrock-runtime',
        endpoint_url=endpoint_url,
        config=config,
        region_name="us-east-1",  # the lab's notebook takes it from its AWS profile
    )
    client.meta.events.register_first(
        'before-send.bedrock-runtime.Converse',
        partial(_add_headers)
    )
    return client


def test_boto3_client(client: Any) -> None:
    bedrock_payload = {
        "modelId": "anthropic.claude-3-sonnet-20240229-v1:0",
        "messages": [{ "content": [{'text': 'hello how are you?'}], "role": "user"}]
    }
    response = client.converse(**bedrock_payload)
    assert response["output"]["message"]["content"][0]["text"] == REPLY + "hello how are you?"


def test_pydantic_ai_over_the_client(client: Any) -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.bedrock import BedrockConverseModel
    from pydantic_ai.providers.bedrock import BedrockProvider

    model: BedrockConverseModel = BedrockConverseModel(
        model_name="anthropic.claude-3-sonnet-20240229-v1:0",
        provider=BedrockProvider(bedrock_client=client)
    )
    agent = Agent(system_prompt='You are a helpful assistant.', model=model)
    response = agent.run_sync("Hello, how are you?")
    # The lab prints response.data: pydantic-ai 1.0 renamed it response.output.
    assert response.output == REPLY + "Hello, how are you?"


def test_langchain_over_the_client(client: Any) -> None:
    from langchain_aws import ChatBedrockConverse

    llm = ChatBedrockConverse(
        model="anthropic.claude-3-sonnet-20240229-v1:0",
        temperature=0,
        client=client
    )
    messages = [
        ("system", "You are a helpful assistant."),
        ("human", "Hello! How are you today?"),
    ]
    response = llm.invoke(messages)
    assert response.content == REPLY + "Hello! How are you today?"
    assert response.usage_metadata is not None and response.usage_metadata["output_tokens"] > 0


def test_master_key_still_works_beside_tokens(gw: Served) -> None:
    reply = httpx.post(f"{gw.url}/v1/chat/completions", headers=bearer(MASTER), json=chat_body(MODEL_ID),
                       timeout=30)
    assert reply.status_code == 200
