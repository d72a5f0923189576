"""SERVER_ROOT_PATH (LiteLLM's variable): with ``/llm-gateway`` set, every route — inference in the
three formats, admin, health, docs, the UI — answers under ``/llm-gateway/…`` and, as in LiteLLM
(FastAPI's ``root_path``), without it too (a proxy in front that strips the prefix)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import boto3
import httpx
import openai
import pytest
from botocore.config import Config

from tests.e2e.servers import gateway
from tollgate.fakes.sigv4 import TEST_ACCESS_KEY, TEST_SECRET_KEY

MASTER = "sk-root-path-master"
PREFIX = "/llm-gateway"
PRICE = {"input_cost_per_token": "0.000001", "output_cost_per_token": "0.000002"}
REPLY = "Hello from tollgate's fake upstream! You said: "


@pytest.fixture(scope="module")
def base(upstream: str) -> Iterator[str]:
    config = {
        "model_list": [
            {"model_name": "chat", "model_info": PRICE, "litellm_params": {
                "model": "openai/gpt-4o-mini", "api_base": f"{upstream}/v1", "api_key": "sk-upstream"}},
            {"model_name": "claude", "model_info": PRICE, "litellm_params": {
                "model": "anthropic/claude-x", "api_base": upstream, "api_key": "sk-ant-upstream"}},
        ],
        "general_settings": {"master_key": MASTER, "database_url": "memory"},
    }
    env = {"SERVER_ROOT_PATH": f"{PREFIX}/", "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": TEST_SECRET_KEY}
    with gateway(config, env=env) as url:
        yield url


def _get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, headers={"Authorization": f"Bearer {MASTER}"}, timeout=10, **kwargs)


@pytest.mark.parametrize("prefix", [PREFIX, ""])
def test_openai_and_anthropic_sdks(base: str, prefix: str) -> None:
    client = openai.OpenAI(api_key=MASTER, base_url=f"{base}{prefix}/v1", max_retries=0)
    reply = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == REPLY + "hi"
    streamed = client.chat.completions.create(model="chat", stream=True,
                                              messages=[{"role": "user", "content": "a stream"}])
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == REPLY + "a stream"
    claude = anthropic.Anthropic(api_key=MASTER, base_url=f"{base}{prefix}", max_retries=0)
    message = claude.messages.create(model="claude", max_tokens=64,
                                     messages=[{"role": "user", "content": "yo"}])
    assert message.content[0].type == "text" and message.content[0].text == REPLY + "yo"


def test_boto3_converse_under_the_prefix(base: str) -> None:
    client = boto3.client("bedrock-runtime", endpoint_url=f"{base}{PREFIX}", region_name="us-east-1",
                          aws_access_key_id="unused", aws_secret_access_key="unused",
                          config=Config(retries={"max_attempts": 1}))
    client.meta.events.register_first(
        "before-send.bedrock-runtime.Converse",
        lambda request, **_: request.headers.__setitem__("Authorization", f"Bearer {MASTER}"))
    answer = client.converse(modelId="chat", messages=[{"role": "user", "content": [{"text": "hey"}]}])
    assert answer["output"]["message"]["content"][0]["text"] == REPLY + "hey"
    with pytest.raises(client.exceptions.ResourceNotFoundException):  # Bedrock's error format, prefixed too
        client.converse(modelId="no-such-model", messages=[{"role": "user", "content": [{"text": "x"}]}])


def test_admin_health_and_models_answer_under_the_prefix_and_without_it(base: str) -> None:
    for prefix in (PREFIX, ""):
        made = httpx.post(f"{base}{prefix}/key/generate", headers={"Authorization": f"Bearer {MASTER}"},
                          json={"key_alias": f"k{prefix.replace('/', '-')}"}, timeout=10)
        assert made.status_code == 200, made.text
        assert _get(f"{base}{prefix}/key/info", params={"key": made.json()["key"]}).status_code == 200
        assert _get(f"{base}{prefix}/health/liveliness").status_code == 200
        assert _get(f"{base}{prefix}/health/readiness").json()["status"] == "healthy"
        assert {m["id"] for m in _get(f"{base}{prefix}/v1/models").json()["data"]} == {"chat", "claude"}
    missing = _get(f"{base}{PREFIX}x/key/list")  # a longer first segment is not the prefix
    assert missing.status_code == 404


def test_docs_openapi_and_ui_under_the_prefix(base: str) -> None:
    bare = httpx.get(f"{base}{PREFIX}", timeout=10)
    assert (bare.status_code, bare.headers["location"]) == (308, f"{PREFIX}/")
    docs = httpx.get(f"{base}{PREFIX}/", timeout=10)
    assert docs.status_code == 200 and 'src="docs/assets/swagger-ui-bundle.js"' in docs.text
    assert httpx.get(f"{base}{PREFIX}/docs/assets/swagger-ui-bundle.js", timeout=10).status_code == 200
    spec = httpx.get(f"{base}{PREFIX}/openapi.json", timeout=10).json()
    assert spec["servers"] == [{"url": PREFIX}]  # Swagger's "Try it out" calls go under the prefix
    ui = httpx.get(f"{base}{PREFIX}/ui", timeout=10)
    assert (ui.status_code, ui.headers["location"]) == (308, f"{PREFIX}/ui/")
    page = httpx.get(f"{base}{PREFIX}/ui/keys", timeout=10)
    assert page.status_code == 200 and 'src="static/js/app.js"' in page.text
    assert httpx.get(f"{base}{PREFIX}/ui/static/js/app.js", timeout=10).status_code == 200
    session = httpx.get(f"{base}{PREFIX}/ui/auth/session", timeout=10)
    cookie = session.headers["set-cookie"]
    assert f"Path={PREFIX}/ui/auth" in cookie  # the browser sends it back under the prefix
