"""Raw HTTP against the gateway: the SSE byte format, auth headers, and every client error case."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.e2e.conftest import MASTER_KEY

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
CHAT = {"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]}


def post(base_url: str, path: str, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return httpx.post(f"{base_url}{path}", content=content, headers=headers if headers is not None else AUTH)


def assert_openai_error(resp: httpx.Response, status: int) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert "Traceback" not in resp.text
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", ["/chat/completions", "/v1/chat/completions"])
def test_sse_byte_format(base_url: str, path: str) -> None:
    with httpx.stream("POST", f"{base_url}{path}", json={**CHAT, "stream": True}, headers=AUTH) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(resp.iter_bytes())
    events = raw.split(b"\n\n")
    assert events[-1] == b""
    assert events[-2] == b"data: [DONE]"
    for event in events[:-2]:
        assert event.startswith(b"data: {")
        chunk = orjson.loads(event[len(b"data: ") :])
        assert chunk["object"] == "chat.completion.chunk"


@pytest.mark.parametrize("header", ["Authorization", "x-api-key", "api-key"])
def test_master_key_in_each_header(base_url: str, header: str) -> None:
    value = f"Bearer {MASTER_KEY}" if header == "Authorization" else MASTER_KEY
    assert post(base_url, "/v1/chat/completions", CHAT, {header: value}).status_code == 200


def test_missing_key_is_401(base_url: str) -> None:
    error = assert_openai_error(post(base_url, "/v1/chat/completions", CHAT, {}), 401)
    assert error["code"] == "401"


def test_admin_like_route_requires_key(base_url: str) -> None:
    assert_openai_error(httpx.get(f"{base_url}/v1/models"), 401)
    assert_openai_error(httpx.get(f"{base_url}/health"), 401)


def test_health_endpoints(base_url: str) -> None:
    assert httpx.get(f"{base_url}/health/liveliness").json() == "I'm alive!"
    ready = httpx.get(f"{base_url}/health/readiness")
    assert ready.status_code == 200
    assert ready.json()["db"] == "memory"  # the e2e gateway runs with database_url: memory
    report = httpx.get(f"{base_url}/health", headers=AUTH, timeout=30).json()
    healthy = {e["model_name"] for e in report["healthy_endpoints"]}
    unhealthy = {e["model_name"] for e in report["unhealthy_endpoints"]}
    assert {"gpt-fake", "local-fake", "embed-fake"} <= healthy
    assert {"throttled", "unreachable"} <= unhealthy
    assert "sk-upstream-secret" not in str(report)


def test_malformed_json(base_url: str) -> None:
    error = assert_openai_error(post(base_url, "/v1/chat/completions", b"{not json"), 400)
    assert "JSON" in str(error["message"]) or "json" in str(error["message"])


def test_missing_messages(base_url: str) -> None:
    error = assert_openai_error(post(base_url, "/v1/chat/completions", {"model": "gpt-fake"}), 400)
    assert error["param"] == "messages"


def test_wrong_type(base_url: str) -> None:
    error = assert_openai_error(post(base_url, "/v1/chat/completions", {**CHAT, "temperature": "hot"}), 400)
    assert error["param"] == "temperature"


def test_body_not_an_object(base_url: str) -> None:
    assert_openai_error(post(base_url, "/v1/chat/completions", [1, 2]), 400)


def test_unknown_route_is_json_404(base_url: str) -> None:
    assert_openai_error(httpx.get(f"{base_url}/no/such/route", headers=AUTH), 404)


def test_upstream_429_keeps_retry_after(base_url: str) -> None:
    resp = post(base_url, "/v1/chat/completions", {**CHAT, "model": "throttled"})
    assert_openai_error(resp, 429)
    assert resp.headers["retry-after"] == "1"
