"""Helpers for the routing end-to-end tests: gateways whose log we can read, deployments named by
id, and one client call in either the OpenAI or the Anthropic wire format (streamed or not)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import yaml

from tests.e2e.servers import free_port, process

MASTER_KEY = "sk-routing-master"
FORMATS = ("openai", "anthropic")
TIMEOUT = httpx.Timeout(20.0)


@dataclass(frozen=True, slots=True)
class Gateway:
    url: str
    log: Path

    def metric_lines(self) -> list[dict[str, Any]]:
        """The ``litellm_metric`` JSON lines the gateway printed so far (needs ``json_logs``)."""
        out: list[dict[str, Any]] = []
        for line in self.log.read_bytes().splitlines():
            if line.startswith(b"{") and b"litellm_metric" in line:
                try:
                    out.append(orjson.loads(line))
                except orjson.JSONDecodeError:
                    continue
        return out


def _serves(url: str, config: Mapping[str, Any]) -> bool:
    """Whether the server on ``url`` is ours: other suites start servers on free ports too, and
    one of them may have taken the port between ``free_port`` and our bind."""
    expected = {entry["model_name"] for entry in config["model_list"]}
    try:
        listed = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {MASTER_KEY}"})
        names = {item["id"] for item in listed.json().get("data", [])}
    except (httpx.HTTPError, ValueError, AttributeError, TypeError, KeyError):
        return False
    return expected <= names


@contextmanager
def running_gateway(config: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Iterator[Gateway]:
    """``tollgate serve`` with ``config`` on a free loopback port (``env``: extra variables)."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(dict(config), handle)
    try:
        for _ in range(3):
            port = free_port()
            args = ["serve", "--config", handle.name, "--host", "127.0.0.1", "--port", str(port)]
            with process(args, f"http://127.0.0.1:{port}/health/liveliness", env) as log:
                url = f"http://127.0.0.1:{port}"
                if _serves(url, config):
                    yield Gateway(url, log)
                    return
        raise RuntimeError("could not start a gateway on a free port")
    finally:
        os.unlink(handle.name)


def deployment(group: str, dep_id: str, upstream: str, model: str, **params: Any) -> dict[str, Any]:
    """An OpenAI-compatible deployment of the fake upstream, with a fixed deployment id."""
    litellm_params = {"model": f"openai/{model}", "api_base": f"{upstream}/v1", "api_key": "sk-up", **params}
    return {"model_name": group, "litellm_params": litellm_params, "model_info": {"id": dep_id}}


def config(deployments: list[dict[str, Any]], **router: Any) -> dict[str, Any]:
    return {
        "model_list": deployments,
        "router_settings": router,
        "general_settings": {"master_key": MASTER_KEY, "database_url": "memory"},
        "litellm_settings": {"drop_params": True, "json_logs": True},
    }


def fake_calls(upstream: str) -> dict[str, int]:
    counts: dict[str, int] = httpx.get(f"{upstream}/_fake/calls").json()
    return counts


@dataclass(slots=True)
class Reply:
    status: int
    headers: httpx.Headers
    body: bytes
    events: list[tuple[str | None, Any]] = field(default_factory=list)  # (event name, JSON data)

    @property
    def group(self) -> str | None:
        value: str | None = self.headers.get("x-litellm-model-group")
        return value

    @property
    def deployment(self) -> str | None:
        value: str | None = self.headers.get("x-litellm-model-id")
        return value

    @property
    def attempts(self) -> int:
        return int(self.headers.get("x-tollgate-attempts", "0"))

    def json(self) -> Any:
        return orjson.loads(self.body)

    def text(self, fmt: str) -> str:
        """The assistant text, from the whole response or the stream's deltas."""
        if not self.events:
            data = self.json()
            if fmt == "openai":
                return str(data["choices"][0]["message"]["content"])
            return "".join(b["text"] for b in data["content"] if b["type"] == "text")
        out = []
        for _, data in self.events:
            if not isinstance(data, dict):
                continue
            if fmt == "openai":
                for choice in data.get("choices", ()):
                    out.append(choice.get("delta", {}).get("content") or "")
            elif data.get("type") == "content_block_delta":
                out.append(data["delta"].get("text", ""))
        return "".join(out)

    def stream_error(self) -> dict[str, Any] | None:
        """The in-stream error event's payload, in the client's format."""
        for name, data in self.events:
            if isinstance(data, dict) and (name == "error" or "error" in data):
                return data
        return None


def _sse(raw: bytes) -> list[tuple[str | None, Any]]:
    events: list[tuple[str | None, Any]] = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        name: str | None = None
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].strip())
        if not data:
            continue
        payload = b"\n".join(data)
        events.append((name, payload.decode() if payload == b"[DONE]" else orjson.loads(payload)))
    return events


def ask(
    client: httpx.Client, base: str, fmt: str, model: str, *, stream: bool = False, **extra: Any
) -> Reply:
    """One chat call in ``fmt`` ("openai" or "anthropic"); ``extra`` goes into the body."""
    messages = [{"role": "user", "content": "hi"}]
    if fmt == "openai":
        path, headers = "/v1/chat/completions", {"Authorization": f"Bearer {MASTER_KEY}"}
        body: dict[str, Any] = {"model": model, "messages": messages}
    else:
        path, headers = "/v1/messages", {"x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01"}
        body = {"model": model, "messages": messages, "max_tokens": 64}
    if stream:
        body["stream"] = True
    body.update(extra)
    with client.stream("POST", f"{base}{path}", content=orjson.dumps(body), headers=headers) as resp:
        raw = resp.read()
    events = _sse(raw) if stream and resp.status_code == 200 else []
    return Reply(resp.status_code, resp.headers, raw, events)
