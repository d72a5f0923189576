"""Request limits at the edge, in-process: enforced params from the config, the body size
limit on every route kind (declared and chunked), and a metric line for every answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from tests.fakes.inprocess import running
from tests.fakes.scripted import MASTER, Reply, Upstream, chat_body, completion, config, new_key, one_row


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


async def test_enforced_params_from_the_config_name_the_missing_param(upstream: Upstream) -> None:
    upstream.replies["chat"] = Reply(pieces=[orjson.dumps(completion())])
    async with running(config(enforced_params=["user"]), upstream.transport) as gw:
        async with gw.client(authorization=f"Bearer {MASTER}") as client:
            missing = await client.post("/v1/chat/completions", content=chat_body(stream=False))
            given = await client.post("/v1/chat/completions", content=chat_body(stream=False, user="u1"))
        assert missing.status_code == 400
        error = missing.json()["error"]
        assert error["param"] == "user" and "param=user" in error["message"]
        assert given.status_code == 200
        assert upstream.calls == 1
        assert (await one_row(gw, missing.headers["x-request-id"]))["status_code"] == 400


LONG = [{"role": "user", "content": "x" * 2048}]


@pytest.mark.parametrize(
    ("path", "body", "kind"),
    [
        ("/v1/chat/completions", {"model": "chat", "messages": LONG}, "openai"),
        ("/v1/messages", {"model": "chat", "max_tokens": 5, "messages": LONG}, "anthropic"),
        ("/bedrock/model/chat/converse", {"messages": [{"role": "user", "content": [{"text": "x" * 2048}]}]},
         "bedrock"),
        ("/v1/embeddings", {"model": "chat", "input": "x" * 2048}, "openai"),
        ("/bedrock/model/nova/invoke", {"inputText": "x" * 2048}, "bedrock"),
        ("/key/generate", {"metadata": {"x": "x" * 2048}}, "openai"),
    ],
)
async def test_bodies_above_the_limit_are_413_in_the_route_format(
    upstream: Upstream, path: str, body: dict[str, Any], kind: str
) -> None:
    headers = {"authorization": f"Bearer {MASTER}", "x-api-key": MASTER}
    async with (
        running(config(max_request_size_mb=1 / 1024), upstream.transport) as gw,  # a 1 KB limit
        gw.client(**headers) as client,
    ):
        answer = await client.post(path, json=body)
        chunked = await client.post(path, content=_pieces(orjson.dumps(body)))
    for refused in (answer, chunked):
        assert refused.status_code == 413, refused.text
        if kind == "anthropic":
            assert refused.json()["error"]["type"] == "request_too_large"
        elif kind == "bedrock":
            assert refused.headers["x-amzn-errortype"] == "ValidationException"
        else:
            assert refused.json()["error"]["type"] == "invalid_request_error"
    assert upstream.calls == 0


async def _pieces(body: bytes) -> AsyncIterator[bytes]:
    """The body in small pieces without a content-length (chunked transfer)."""
    for start in range(0, len(body), 256):
        yield body[start : start + 256]


async def test_every_answer_prints_a_metric_line_without_made_up_model_names(upstream: Upstream) -> None:
    upstream.replies["chat"] = Reply(pieces=[orjson.dumps(completion())])
    settings = {**config(), "litellm_settings": {"json_logs": True}}
    async with running(settings, upstream.transport) as gw:
        limited = await new_key(gw, rpm_limit=1)
        asks = [(limited, chat_body(stream=False)), (limited, chat_body(stream=False)),
                (MASTER, chat_body("made-up-name", stream=False)), ("sk-bad", chat_body(stream=False)),
                (MASTER, b"[")]
        async with gw.client() as client:
            for key, body in asks:
                headers = {"authorization": f"Bearer {key}"}
                await client.post("/v1/chat/completions", content=body, headers=headers)
            metrics = await client.get("/metrics")
        lines = [(line["status_code"], line["model"], "error" in line) for line in gw.metric_lines()]
    # Answered, rate-limited, unknown model, bad key, bad body: each a line; no made-up name in any.
    expected = [(200, "chat", False), (429, "chat", True), (400, "", True), (401, "", True), (400, "", True)]
    assert lines == expected
    assert "made-up-name" not in metrics.text
