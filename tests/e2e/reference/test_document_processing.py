"""The document-processing implementation guide (LiteLLM on ECS in front of Bedrock for five
agents) against tollgate: its ``litellm_config.yaml`` (the examples' ``document-processing.yaml``)
served as written, and the guide's calls — the curl checks of "Local Validation" and "Post-Deploy
Verification", the ALB health check on the separate health port, the admin UI, one virtual key
per agent used through ``OPENAI_BASE_URL``, and the JSON metric lines its CloudWatch metric
filters parse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from string import Template
from typing import Any

import httpx
import openai
import pytest

from tests.e2e.reference.conftest import DATABASES, Served, bearer, load, on_loopback, served
from tests.e2e.servers import free_port
from tests.polling import wait_until

ADMIN_KEY = "sk-docproc-admin-0123456789abcdef"  # .env.example: "Admin API key (must start with sk-)"
AGENTS = ("supervisor", "chunking", "extraction", "mapping", "validation")
REPLY = "Hello from tollgate's fake upstream! You said: "
# Metric filter fields (guide, 4.2 and 8.3).
METRIC_FIELDS = {
    "litellm_metric", "model", "provider_model", "prompt_tokens", "completion_tokens", "total_tokens",
    "response_cost", "response_time_ms", "status_code", "timestamp",
}


@pytest.fixture(scope="module", params=DATABASES)
def gateway(request: pytest.FixtureRequest, upstream: str) -> Iterator[tuple[Served, int]]:
    health_port = free_port()  # the guide's compose maps 8001; any free port here
    env = {
        "LITELLM_ADMIN_KEY": ADMIN_KEY,
        "LITELLM_SALT_KEY": "0123456789abcdef0123456789abcdef",
        "UI_USERNAME": "admin",
        "UI_PASSWORD": "a-strong-ui-password",
        "SEPARATE_HEALTH_APP": "1",
        "SEPARATE_HEALTH_PORT": str(health_port),
    }
    config = on_loopback(load("document-processing.yaml"), upstream)
    with served(config, request.param, env) as gw:
        yield gw, health_port


def _curl_chat(url: str, text: str) -> httpx.Response:
    # curl -X POST http://localhost:4000/v1/chat/completions -H "Authorization: Bearer <YOUR_ADMIN_KEY>"
    #   -H "Content-Type: application/json" -d '{"model":"claude-fast","messages":[...]}'
    data = Template('{"model":"claude-fast","messages":[{"role":"user","content":"$text"}]}')
    return httpx.post(f"{url}/v1/chat/completions", headers=bearer(ADMIN_KEY),
                      content=data.substitute(text=text), timeout=30)


@pytest.mark.parametrize("text", ["hello", "ping"])
def test_chat_completion_check(gateway: tuple[Served, int], text: str) -> None:
    gw, _ = gateway
    response = _curl_chat(gw.url, text)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "claude-fast"
    assert body["choices"][0]["message"]["content"] == REPLY + text
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert response.headers["x-litellm-model-group"] == "claude-fast"


def test_alb_health_check_on_the_health_port(gateway: tuple[Served, int]) -> None:
    _, health_port = gateway
    # curl -f http://localhost:8001/health → 200, with no key (the ALB target-group check).
    probe = httpx.get(f"http://127.0.0.1:{health_port}/health", timeout=10)
    assert probe.status_code == 200, probe.text
    assert probe.json()["status"] == "healthy"
    assert probe.json()["db"] == "connected"


def test_health_on_the_proxy_port_needs_the_admin_key(gateway: tuple[Served, int]) -> None:
    gw, _ = gateway
    # "curl http://localhost:4000/health" in the guide's step 3 sends no key: refused, as by LiteLLM.
    anonymous = httpx.get(f"{gw.url}/health", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"
    checked = httpx.get(f"{gw.url}/health", headers=bearer(ADMIN_KEY), timeout=30)
    assert checked.status_code == 200, checked.text
    healthy = {e["model_name"] for e in checked.json()["healthy_endpoints"]}
    assert healthy == {"claude-primary", "claude-fallback", "claude-fast"}
    assert checked.json()["unhealthy_endpoints"] == []


def test_admin_ui_loads(gateway: tuple[Served, int]) -> None:
    gw, _ = gateway
    page = httpx.get(f"{gw.url}/ui", follow_redirects=True, timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    # UI_USERNAME / UI_PASSWORD from .env sign the admin in.
    with httpx.Client(base_url=gw.url, timeout=10) as browser:
        login_csrf = browser.get("/ui/auth/session").json()["login_csrf"]
        signed_in = browser.post(
            "/ui/auth/login",
            json={"username": "admin", "password": "a-strong-ui-password"},
            headers={"x-csrf-token": login_csrf},
        )
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["role"] == "proxy_admin"


def _agent_keys(url: str) -> dict[str, str]:
    keys = {}
    for agent in AGENTS:
        created = httpx.post(f"{url}/key/generate", headers=bearer(ADMIN_KEY), json={"key_alias": agent})
        assert created.status_code == 200, created.text
        keys[agent] = created.json()["key"]
    return keys


def _spend_rows(url: str, key: str, expected: int) -> list[dict[str, Any]]:
    def rows() -> list[dict[str, Any]] | None:  # spend rows are written in batches, off the request path
        found = httpx.get(f"{url}/spend/logs", headers=bearer(ADMIN_KEY), params={"api_key": key}).json()
        return list(found) if len(found) >= expected else None

    return wait_until(rows, timeout=15, what=f"{expected} spend rows")


def test_one_virtual_key_per_agent_through_openai_base_url(
    gateway: tuple[Served, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    gw, _ = gateway
    keys = _agent_keys(gw.url)
    # Agent configuration: OPENAI_BASE_URL=https://llm-gateway.document-processing.internal/v1
    monkeypatch.setenv("OPENAI_BASE_URL", f"{gw.url}/v1")
    models = {"supervisor": "claude-primary", "extraction": "claude-primary", "mapping": "claude-primary",
              "chunking": "claude-fast", "validation": "claude-fast"}
    for agent, key in keys.items():
        client = openai.OpenAI(api_key=key, max_retries=0)
        reply = client.chat.completions.create(
            model=models[agent], messages=[{"role": "user", "content": f"task for {agent}"}]
        )
        assert reply.choices[0].message.content == REPLY + f"task for {agent}"
    for agent, key in keys.items():
        rows = _spend_rows(gw.url, key, 1)
        assert len(rows) == 1, rows
        assert rows[0]["key_alias"] == agent
        assert rows[0]["model_group"] == models[agent]
        assert rows[0]["spend"] > 0


def test_streaming_through_the_openai_sdk(gateway: tuple[Served, int]) -> None:
    gw, _ = gateway
    client = openai.OpenAI(api_key=ADMIN_KEY, base_url=f"{gw.url}/v1", max_retries=0)
    stream = client.chat.completions.create(
        model="claude-primary", messages=[{"role": "user", "content": "stream it"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == REPLY + "stream it"


def _log_lines(gw: Served) -> list[dict[str, Any]]:
    lines = []
    for raw in gw.log.read_text().splitlines():
        if raw.strip():
            lines.append(json.loads(raw))  # json_logs: true — every line is one JSON object
    return lines


def test_metric_lines_for_the_cloudwatch_metric_filters(gateway: tuple[Served, int]) -> None:
    gw, _ = gateway
    assert _curl_chat(gw.url, "metered").status_code == 200

    def metric_line() -> dict[str, Any] | None:
        metrics = [line for line in _log_lines(gw) if line.get("litellm_metric") is True]
        return next((m for m in metrics if m["model"] == "claude-fast" and m["completion_tokens"] > 0), None)

    line = wait_until(metric_line, timeout=10, what="the request's metric line")
    assert set(line) >= METRIC_FIELDS
    assert line["provider_model"] == "bedrock/us.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert line["status_code"] == 200
    assert line["total_tokens"] == line["prompt_tokens"] + line["completion_tokens"]
    assert line["response_cost"] > 0 and line["response_time_ms"] >= 0
    # ApplicationErrors filters `level = "ERROR"`: the other lines carry a level.
    assert all("level" in entry for entry in _log_lines(gw) if "litellm_metric" not in entry)
