"""OIDC/JWT callers against a real gateway and a real local issuer (discovery + JWKS on loopback).

The official OpenAI and Anthropic SDKs and boto3 (unsigned, bearer token added by a
``request-created`` hook) authenticate with tokens minted by ``tests/auth/oidc_issuer.py``; the
gateway resolves them against its store (users upserted, teams created through the admin API).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import boto3
import httpx
import openai
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.auth.oidc_issuer import LocalIssuer, serve_issuer
from tests.e2e.servers import gateway

MASTER = "sk-jwt-master"
HI = [{"role": "user", "content": "hi"}]
BEDROCK_HI = [{"role": "user", "content": [{"text": "hi"}]}]


def jwt_config(issuer: LocalIssuer) -> dict[str, Any]:
    return {
        "model_list": [
            {"model_name": "fake-chat", "litellm_params": {"model": "fake/chat"}},
            {"model_name": "fake-other", "litellm_params": {"model": "fake/other"}},
        ],
        "general_settings": {
            "master_key": MASTER,
            "database_url": "memory",
            "enable_jwt_auth": True,
            "litellm_jwtauth": {
                "issuers": [{"issuer": issuer.url, "audience": "tollgate", "jwks_url": f"{issuer.url}/jwks"}],
                "user_email_jwt_field": "email",
                "team_ids_jwt_field": "groups",
                "user_id_upsert": True,
                "jwks_min_refresh_interval": 0,
                "default_user_params": {"models": ["fake-chat"], "rpm_limit": 50},
                "machine_clients": [
                    {"client_id": "billing-app", "service_id": "billing-bot", "team_id": "billing"},
                    {"client_id": "ops-app", "service_id": "ops-bot", "team_id": "ghost-team"},
                ],
            },
        },
        "router_settings": {"num_retries": 0},
    }


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    with serve_issuer() as iss:
        yield iss


@pytest.fixture(scope="module")
def gw(issuer: LocalIssuer) -> Iterator[str]:
    with gateway(jwt_config(issuer)) as url:
        yield url


def admin_post(gw: str, path: str, body: dict[str, Any], token: str = MASTER) -> httpx.Response:
    return httpx.post(f"{gw}{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def admin_get(gw: str, path: str, token: str) -> httpx.Response:
    return httpx.get(f"{gw}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def oai(gw: str, token: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=token, base_url=f"{gw}/v1", max_retries=0)


def bedrock(gw: str, token: str) -> Any:
    client = boto3.client(
        "bedrock-runtime", endpoint_url=f"{gw}/bedrock", region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}),
    )
    add: Callable[..., None] = lambda request, **_: request.headers.__setitem__(  # noqa: E731
        "Authorization", f"Bearer {token}"
    )
    client.meta.events.register("request-created.*", add)
    return client


def machine_token(issuer: LocalIssuer, client_id: str, **extra: Any) -> str:
    return issuer.mint(issuer.claims(sub=client_id, client_id=client_id, **extra))


def user_token(issuer: LocalIssuer, sub: str, **extra: Any) -> str:
    return issuer.mint(issuer.claims(sub=sub, email=f"{sub}@example.com", **extra))


def assert_not_echoed(token: str, text: str) -> None:
    for segment in token.split("."):
        if len(segment) > 8:
            assert segment not in text


def test_machine_token_metered_and_limited_against_its_team(gw: str, issuer: LocalIssuer) -> None:
    created = admin_post(gw, "/team/new", {"team_id": "billing", "rpm_limit": 2, "models": ["fake-chat"]})
    assert created.status_code == 200, created.text
    token = machine_token(issuer, "billing-app")

    raw = oai(gw, token).chat.completions.with_raw_response.create(model="fake-chat", messages=HI)  # type: ignore[arg-type]
    assert raw.http_response.status_code == 200
    assert raw.headers["x-ratelimit-limit-requests"] == "2"
    assert raw.headers["x-ratelimit-remaining-requests"] == "1"
    assert raw.parse().choices[0].message.content

    answer = bedrock(gw, token).converse(modelId="fake-chat", messages=BEDROCK_HI)
    assert answer["output"]["message"]["role"] == "assistant"

    with pytest.raises(openai.RateLimitError) as info:
        oai(gw, token).chat.completions.create(model="fake-chat", messages=HI)  # type: ignore[arg-type]
    assert info.value.status_code == 429
    assert "team" in info.value.message

    # The team's models apply to its service too.
    with pytest.raises(openai.PermissionDeniedError):
        oai(gw, machine_token(issuer, "billing-app", jti="2")).chat.completions.create(
            model="fake-other", messages=HI  # type: ignore[arg-type]
        )


def test_machine_token_for_unknown_team_is_refused(gw: str, issuer: LocalIssuer) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        oai(gw, machine_token(issuer, "ops-app")).chat.completions.create(
            model="fake-chat", messages=HI  # type: ignore[arg-type]
        )
    assert "team" in info.value.message


def test_admin_scope_token_uses_the_admin_api(gw: str, issuer: LocalIssuer) -> None:
    assert admin_post(gw, "/team/new", {"team_id": "research"}).status_code == 200
    admin = user_token(issuer, "root", scope="openid litellm_proxy_admin")
    listed = admin_get(gw, "/team/list", admin)
    assert listed.status_code == 200, listed.text
    assert "research" in [t["team_id"] for t in listed.json()]
    made = admin_post(gw, "/team/new", {"team_id": "made-by-jwt-admin"}, token=admin)
    assert made.status_code == 200, made.text

    normal = user_token(issuer, "bob")
    for path in ("/user/list", "/organization/list"):
        refused = admin_get(gw, path, normal)
        assert refused.status_code == 403, (path, refused.text)
        assert_not_echoed(normal, refused.text)
    assert admin_post(gw, "/team/new", {"team_id": "nope"}, token=normal).status_code == 403
    # A normal user lists only the teams it belongs to.
    mine = admin_get(gw, "/team/list", normal)
    assert mine.status_code == 200 and mine.json() == []


def test_jwt_user_mints_keys_within_own_limits(gw: str, issuer: LocalIssuer) -> None:
    token = user_token(issuer, "alice")
    info = admin_get(gw, "/user/info", token)  # upserted on first sight, seeded with the defaults
    assert info.status_code == 200, info.text
    assert info.json()["user_info"]["models"] == ["fake-chat"]
    assert info.json()["user_info"]["rpm_limit"] == 50

    made = admin_post(gw, "/key/generate", {"models": ["fake-chat"], "rpm_limit": 10}, token=token)
    assert made.status_code == 200, made.text
    assert made.json()["user_id"] == "alice"
    key = made.json()["key"]
    reply = oai(gw, key).chat.completions.create(model="fake-chat", messages=HI)  # type: ignore[arg-type]
    assert reply.choices[0].message.content

    too_much = admin_post(gw, "/key/generate", {"rpm_limit": 1000}, token=token)
    assert too_much.status_code == 403, too_much.text
    for_other = admin_post(gw, "/key/generate", {"user_id": "mallory"}, token=token)
    assert for_other.status_code == 403, for_other.text


def test_jwt_user_on_every_client_format(gw: str, issuer: LocalIssuer) -> None:
    token = user_token(issuer, "carol")
    assert oai(gw, token).chat.completions.create(model="fake-chat", messages=HI).choices  # type: ignore[arg-type]
    msg = anthropic.Anthropic(auth_token=token, base_url=gw, max_retries=0).messages.create(
        model="fake-chat", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    assert msg.role == "assistant" and msg.content
    answer = bedrock(gw, token).converse(modelId="fake-chat", messages=BEDROCK_HI)
    assert answer["output"]["message"]["content"][0]["text"]
    models = admin_get(gw, "/v1/models", token).json()
    assert [m["id"] for m in models["data"]] == ["fake-chat"]


BAD_TOKENS: dict[str, Callable[[LocalIssuer], str]] = {
    "expired": lambda iss: iss.mint(iss.claims(sub="dave", iat=int(time.time()) - 900,
                                               exp=int(time.time()) - 300)),
    "wrong-aud": lambda iss: iss.mint(iss.claims(sub="dave", aud="someone-else")),
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_bad_tokens_are_401_in_every_format(gw: str, issuer: LocalIssuer, kind: str) -> None:
    token = BAD_TOKENS[kind](issuer)
    reason = "expired" if kind == "expired" else "audience"

    with pytest.raises(openai.AuthenticationError) as oai_err:
        oai(gw, token).chat.completions.create(model="fake-chat", messages=HI)  # type: ignore[arg-type]
    assert oai_err.value.status_code == 401 and reason in oai_err.value.message
    assert_not_echoed(token, oai_err.value.response.text)

    with pytest.raises(anthropic.AuthenticationError) as ant_err:
        anthropic.Anthropic(auth_token=token, base_url=gw, max_retries=0).messages.create(
            model="fake-chat", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
    assert ant_err.value.status_code == 401
    assert ant_err.value.response.json()["type"] == "error"
    assert_not_echoed(token, ant_err.value.response.text)

    with pytest.raises(ClientError) as aws_err:
        bedrock(gw, token).converse(modelId="fake-chat", messages=BEDROCK_HI)
    assert aws_err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    assert reason in aws_err.value.response["Error"]["Message"]
    assert_not_echoed(token, str(aws_err.value.response))

    admin = admin_get(gw, "/team/list", token)
    assert admin.status_code == 401
    assert_not_echoed(token, admin.text)


def test_signing_key_rotation_mid_run(gw: str, issuer: LocalIssuer) -> None:
    before = user_token(issuer, "erin")
    assert oai(gw, before).chat.completions.create(model="fake-chat", messages=HI).choices  # type: ignore[arg-type]
    old_key = issuer.keys["key-1"]
    issuer.rotate("key-rotated")
    try:
        after = issuer.mint(issuer.claims(sub="erin", email="erin@example.com", jti="new"), kid="key-rotated")
        reply = oai(gw, after).chat.completions.create(model="fake-chat", messages=HI)  # type: ignore[arg-type]
        assert reply.choices
        # A fresh token signed by the withdrawn key is no longer accepted.
        stale = issuer.mint(issuer.claims(sub="erin", jti="stale"), kid="key-1", key=old_key)
        with pytest.raises(openai.AuthenticationError):
            oai(gw, stale).chat.completions.create(model="fake-chat", messages=HI)  # type: ignore[arg-type]
    finally:
        issuer.keys = {"key-1": old_key, **issuer.keys}


def test_virtual_keys_still_work_beside_jwts(gw: str) -> None:
    assert oai(gw, MASTER).chat.completions.create(model="fake-other", messages=HI).choices  # type: ignore[arg-type]


def test_bad_jwt_config_refuses_to_start(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "model_list: []\n"
        "general_settings:\n  master_key: sk-x\n  database_url: memory\n  enable_jwt_auth: true\n"
        "  litellm_jwtauth:\n    issuers:\n      - issuer: http://idp.example.com\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run(
        [sys.executable, "-m", "tollgate", "serve", "--config", str(config), "--port", "1"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": src},
    )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if "config error" in line]
    assert len(errors) == 1 and "https://" in errors[0]
