"""Scripted upstreams for the in-process gateway tests: real transcripts of each wire format (whole,
or cut just before their end marker), replies routed by upstream model, and a config whose
deployments all point at them. Used with ``tests.fakes.inprocess``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.fakes.inprocess import InProcessGateway, Reply, ScriptedTransport
from tollgate.framing.eventstream import EventStreamDecoder, encode_message
from tollgate.providers.http import UpstreamRequest

MASTER = "sk-inprocess-master"
FIXTURES = Path(__file__).parents[1] / "fixtures"
OPENAI_SSE = (FIXTURES / "openai/stream_tool_call.sse").read_bytes()
ANTHROPIC_SSE = (FIXTURES / "anthropic/stream_thinking_tool.sse").read_bytes()
BEDROCK_STREAM = (FIXTURES / "bedrock/converse_stream.bin").read_bytes()
SSE = {"content-type": "text/event-stream"}
EVENT_STREAM = {"content-type": "application/vnd.amazon.eventstream"}
ASK = [{"role": "user", "content": "hi"}]
AWS = {"aws_access_key_id": "AKIDTEST", "aws_secret_access_key": "secret", "aws_region_name": "us-east-1"}


def sse_events(transcript: bytes) -> list[bytes]:
    return [block + b"\n\n" for block in transcript.split(b"\n\n") if block.strip()]


def bedrock_frames(transcript: bytes) -> list[tuple[str, bytes]]:
    messages = EventStreamDecoder().feed(transcript)
    return [
        (m.event_type or "", encode_message(tuple(m.headers.items()), m.payload)) for m in messages
    ]


def upstream_stream(fmt: str, *, cut: bool = False) -> Reply:
    """A real upstream transcript in ``fmt``, whole or cut just before its end marker."""
    if fmt == "openai":
        pieces = sse_events(OPENAI_SSE)
        return Reply(headers=SSE, pieces=pieces[:-1] if cut else pieces)
    if fmt == "anthropic":
        pieces = sse_events(ANTHROPIC_SSE)
        end = next(i for i, p in enumerate(pieces) if p.startswith(b"event: message_stop"))
        return Reply(headers=SSE, pieces=pieces[:end] if cut else pieces)
    frames = bedrock_frames(BEDROCK_STREAM)
    end = next(i for i, (kind, _) in enumerate(frames) if kind == "messageStop")
    return Reply(headers=EVENT_STREAM, pieces=[f for _, f in (frames[:end] if cut else frames)])


def deployments() -> list[dict[str, Any]]:
    def openai_dep(name: str, **extra: Any) -> dict[str, Any]:
        params = {"model": f"openai/{name}", "api_base": "http://upstream/v1", "api_key": "k", **extra}
        return {"model_name": name, "litellm_params": params}

    return [
        openai_dep("chat"),
        openai_dep("flaky"),
        {"model_name": "claude", "litellm_params": {"model": "anthropic/claude", "api_base": "http://up"}},
        {"model_name": "nova", "litellm_params": {"model": "bedrock/amazon.nova-micro-v1:0",
                                                  "api_base": "http://bedrock", **AWS}},
    ]


def config(**general: Any) -> dict[str, Any]:
    return {
        "model_list": deployments(),
        "general_settings": {"master_key": MASTER, "database_url": "memory", "proxy_batch_write_at": 0.01,
                             **general},
        "router_settings": {"num_retries": 2, "retry_after": 0},
    }


class Upstream:
    """Routes scripted replies by upstream model (the ``model`` in the body, or the Bedrock path)."""

    def __init__(self) -> None:
        self.replies: dict[str, Reply] = {}
        self.transport = ScriptedTransport(self._answer)

    def _answer(self, request: UpstreamRequest) -> Reply:
        url = str(request.url)
        if "/model/" in url:
            return self.replies["nova"]
        model = orjson.loads(request.body).get("model", "") if request.body else ""
        return self.replies.get(model, Reply(status=500, pieces=[b'{"error": {"message": "unscripted"}}']))

    @property
    def calls(self) -> int:
        return len(self.transport.requests)


async def new_key(gw: InProcessGateway, **fields: Any) -> str:
    async with gw.client(authorization=f"Bearer {MASTER}") as client:
        answer = await client.post("/key/generate", json=fields)
        assert answer.status_code == 200, answer.text
        key: str = answer.json()["key"]
        return key


def chat_body(model: str = "chat", stream: bool = True, **extra: Any) -> bytes:
    return orjson.dumps({"model": model, "messages": ASK, "stream": stream, **extra})


async def one_row(gw: InProcessGateway, request_id: str) -> dict[str, Any]:
    rows = await gw.spend_rows(MASTER, request_id)
    assert len(rows) == 1, rows
    return rows[0]



def completion() -> dict[str, Any]:
    return {
        "id": "", "object": "chat.completion", "created": 1, "model": "chat",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
