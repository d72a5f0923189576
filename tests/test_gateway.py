"""The request lifecycle in-process: ``bootstrap.build`` with scripted upstreams (no sockets),
driven by the official SDKs over ``httpx.ASGITransport`` or by a raw ASGI client that can
disconnect at any moment. Every request the gateway answers must be accounted once — a spend
row with its real status and attempt count — however it ends: answered, refused, failed, cut
short by the upstream, or abandoned by the client; and its counters (parallel slot, token
reservation) must be released. (Request limits at the edge: tests/edge/test_request_limits.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import anthropic
import boto3
import openai
import orjson
import pytest
from botocore import UNSIGNED
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.fakes.inprocess import InProcessGateway, Reply, running, until
from tests.fakes.scripted import (
    ASK,
    MASTER,
    OPENAI_SSE,
    SSE,
    Upstream,
    chat_body,
    completion,
    config,
    new_key,
    one_row,
    sse_events,
    upstream_stream,
)
from tests.services import async_redis_prefix
from tollgate.framing.eventstream import EventStreamDecoder


@pytest.fixture
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture
async def gateway(upstream: Upstream) -> AsyncIterator[InProcessGateway]:
    async with running(config(), upstream.transport) as gw:
        yield gw


# ---------------------------------------------------------------------------------------------
# clients that go away
# ---------------------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "redis"])
async def counted(request: pytest.FixtureRequest, upstream: Upstream) -> AsyncIterator[InProcessGateway]:
    """A gateway whose counters live in memory or in Redis (a fresh key prefix, removed after)."""
    if request.param == "memory":
        async with running(config(), upstream.transport) as gw:
            yield gw
        return
    settings = config()
    settings["router_settings"].update(redis_host="127.0.0.1", redis_port=6379)
    async with async_redis_prefix() as prefix, running(
        settings, upstream.transport, env={"TOLLGATE_REDIS_PREFIX": prefix}
    ) as gw:
        yield gw


async def test_a_dropped_stream_is_accounted_and_frees_its_slot(
    counted: InProcessGateway, upstream: Upstream
) -> None:
    stalled = upstream_stream("openai")
    stalled.stall_after = 3  # a slow upstream: the client leaves while it is still talking
    upstream.replies["chat"] = stalled
    key = await new_key(counted, max_parallel_requests=1, tpm_limit=100_000)
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    status, chunks = await counted.stream(
        "/v1/chat/completions", chat_body(), headers, disconnect=lambda chunks: len(chunks) >= 1
    )
    assert status == 200 and chunks
    first = chunks[0].split(b"\n\n", 1)[0]  # events ready together leave in one chunk
    request_id = orjson.loads(first.removeprefix(b"data: ").strip())["id"].removeprefix("chatcmpl-")
    assert await until(lambda: _closed(upstream))  # the upstream connection is let go
    # The parallel slot is free again: the same key gets an answer.
    upstream.replies["chat"] = Reply(pieces=[orjson.dumps(completion())])
    async with counted.client() as client:
        again = await client.post("/v1/chat/completions", content=chat_body(stream=False), headers=headers)
    assert again.status_code == 200, again.text
    rows = await counted.spend_rows(MASTER, at_least=2)
    dropped = [r for r in rows if r["status_code"] == 499]
    assert len(dropped) == 1, rows
    assert dropped[0]["metadata"]["error_class"] == "ClientDisconnected"
    assert dropped[0]["prompt_tokens"] > 0  # what the upstream was sent is still counted
    assert request_id  # the stream's id names the request


async def _closed(upstream: Upstream) -> bool:
    return upstream.transport.closed + upstream.transport.released >= 1


async def test_a_client_gone_before_the_first_byte_is_accounted(
    counted: InProcessGateway, upstream: Upstream
) -> None:
    upstream.replies["chat"] = upstream_stream("openai")
    key = await new_key(counted, max_parallel_requests=1)
    headers = {"authorization": f"Bearer {key}"}
    status, _ = await counted.stream(
        "/v1/chat/completions", chat_body(), headers, disconnect=lambda chunks: True
    )
    assert status == 200
    upstream.replies["chat"] = Reply(pieces=[orjson.dumps(completion())])
    async with counted.client() as client:
        again = await client.post("/v1/chat/completions", content=chat_body(stream=False), headers=headers)
    assert again.status_code == 200, again.text  # the slot was released
    statuses = sorted(r["status_code"] for r in await counted.spend_rows(MASTER, at_least=2))
    # The first stream finished, or was abandoned: either way it has its row.
    assert statuses in ([200, 200], [200, 499])


async def test_a_cancelled_request_is_accounted_and_frees_its_slot(
    counted: InProcessGateway, upstream: Upstream
) -> None:
    upstream.replies["chat"] = Reply(stall_after=0)  # headers, then nothing
    key = await new_key(counted, max_parallel_requests=1)
    async with counted.client(authorization=f"Bearer {key}") as client:
        pending = asyncio.ensure_future(client.post("/v1/chat/completions", content=chat_body(stream=False)))
        await asyncio.wait_for(upstream.transport.stalled.wait(), 10)
        pending.cancel()  # as a server that stops cancels the requests still running
        with pytest.raises(asyncio.CancelledError):
            await pending
        upstream.replies["chat"] = Reply(pieces=[orjson.dumps(completion())])

        tries: list[int] = []

        async def answered() -> bool:  # the cancelled request settles in the background
            again = await client.post("/v1/chat/completions", content=chat_body(stream=False))
            tries.append(again.status_code)
            return again.status_code == 200

        assert await until(answered)
    rows = await counted.spend_rows(MASTER, at_least=1 + len(tries))
    statuses = [r["status_code"] for r in rows]
    assert (statuses.count(499), statuses.count(200)) == (1, 1)
    assert set(statuses) <= {200, 429, 499}  # refusals while the slot was still held are rows too




# ---------------------------------------------------------------------------------------------
# upstream streams that end early
# ---------------------------------------------------------------------------------------------

UPSTREAM_OF = {"openai": "chat", "anthropic": "claude", "bedrock": "nova"}


@pytest.mark.parametrize("upstream_format", ["openai", "anthropic", "bedrock"])
async def test_a_stream_cut_before_its_end_marker_ends_in_an_error_for_openai_clients(
    gateway: InProcessGateway, upstream: Upstream, upstream_format: str
) -> None:
    upstream.replies[UPSTREAM_OF[upstream_format]] = upstream_stream(upstream_format, cut=True)
    async with gateway.client() as http:
        client = openai.AsyncOpenAI(api_key=MASTER, base_url="http://gateway/v1", http_client=http)
        stream = await client.chat.completions.create(
            model=UPSTREAM_OF[upstream_format], messages=ASK, stream=True  # type: ignore[arg-type]
        )
        finishes: list[str | None] = []
        with pytest.raises(openai.APIError, match="ended before its end"):
            async for chunk in stream:
                finishes.extend(c.finish_reason for c in chunk.choices)
    assert "stop" not in finishes and "tool_calls" not in finishes  # never presented as complete
    rows = await gateway.spend_rows(MASTER)
    assert [(r["status_code"], r["metadata"]["error_class"]) for r in rows] == [(502, "StreamTruncated")]


async def test_a_cut_stream_ends_in_an_anthropic_error_event(
    gateway: InProcessGateway, upstream: Upstream
) -> None:
    upstream.replies["chat"] = upstream_stream("openai", cut=True)
    async with gateway.anthropic_http() as http:
        client = anthropic.AsyncAnthropic(api_key=MASTER, base_url="http://gateway", http_client=http)
        stops: list[str | None] = []
        with pytest.raises(anthropic.APIStatusError, match="ended before its end"):
            async with client.messages.stream(model="chat", max_tokens=50, messages=ASK) as stream:  # type: ignore[arg-type]
                async for event in stream:
                    if event.type == "message_delta":
                        stops.append(event.delta.stop_reason)
    assert stops == []  # no end_turn / tool_use for a stream that did not end


def test_a_cut_stream_ends_in_a_bedrock_exception(upstream: Upstream) -> None:
    upstream.replies["chat"] = upstream_stream("openai", cut=True)

    async def scenario() -> None:
        async with running(config(), upstream.transport) as gw:
            async with gw.client(authorization=f"Bearer {MASTER}") as client:
                body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
                answer = await client.post("/bedrock/model/chat/converse-stream", json=body)
            events = EventStreamDecoder().feed(answer.content)
            assert answer.status_code == 200
            assert events[-1].message_type == "exception"
            assert not any(e.event_type == "messageStop" for e in events)
            # boto3 turns the exception frame into an error (its parser, not ours, reads the bytes).
            client_error = _boto3_reads(answer.content)
            assert client_error is not None

    asyncio.run(scenario())


def _boto3_reads(body: bytes) -> Exception | None:
    """Feed a ConverseStream body to boto3's own event-stream parser; the error it raises."""
    from botocore.eventstream import EventStream
    from botocore.parsers import EventStreamJSONParser

    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", config=BotoConfig(signature_version=UNSIGNED)
    )
    shape = client.meta.service_model.operation_model("ConverseStream").output_shape.members["stream"]

    class _Raw:
        def stream(self) -> Iterator[bytes]:
            yield body

    try:
        for _ in EventStream(_Raw(), shape, EventStreamJSONParser(), "ConverseStream"):
            pass
    except ClientError as exc:
        return exc
    return None


async def test_a_mid_stream_upstream_error_is_an_error_event_and_a_row(
    gateway: InProcessGateway, upstream: Upstream
) -> None:
    pieces = [*sse_events(OPENAI_SSE)[:3], b'data: {"error": {"message": "overloaded", "code": 503}}\n\n']
    upstream.replies["chat"] = Reply(headers=SSE, pieces=pieces)
    async with gateway.client() as http:
        client = openai.AsyncOpenAI(api_key=MASTER, base_url="http://gateway/v1", http_client=http)
        stream = await client.chat.completions.create(model="chat", messages=ASK, stream=True)  # type: ignore[arg-type]
        with pytest.raises(openai.APIError, match="overloaded"):
            async for _ in stream:
                pass
    rows = await gateway.spend_rows(MASTER)
    assert [r["status_code"] for r in rows] == [503]
    assert rows[0]["metadata"]["attempts"] == 1


# ---------------------------------------------------------------------------------------------
# failures, refusals and answers: each one a row
# ---------------------------------------------------------------------------------------------


async def test_a_failed_request_records_its_real_attempt_count(
    gateway: InProcessGateway, upstream: Upstream
) -> None:
    upstream.replies["flaky"] = Reply(status=503, pieces=[b'{"error": {"message": "busy"}}'])
    async with gateway.client(authorization=f"Bearer {MASTER}") as client:
        answer = await client.post("/v1/chat/completions", content=chat_body("flaky", stream=False))
    assert answer.status_code == 503
    assert upstream.calls == 3  # num_retries 2
    row = await one_row(gateway, answer.headers["x-request-id"])
    assert (row["status_code"], row["metadata"]["attempts"]) == (503, 3)
    assert row["model_id"] is not None  # the deployment that failed last


async def test_refused_requests_are_rows_with_their_status(
    gateway: InProcessGateway, upstream: Upstream
) -> None:
    limited = await new_key(gateway, rpm_limit=1, models=["chat"])
    spent = await new_key(gateway, max_budget=0)
    upstream.replies["chat"] = Reply(pieces=[orjson.dumps(completion())])
    expected: dict[str, int] = {}
    async with gateway.client() as client:
        for key, model in [
            (limited, "chat"), (limited, "chat"), (spent, "chat"),  # answered, then rpm, budget
            (limited, "claude"), ("sk-nope", "chat"), (MASTER, "nope"),  # access, key, model
        ]:
            answer = await client.post(
                "/v1/chat/completions", content=chat_body(model, stream=False),
                headers={"authorization": f"Bearer {key}"},
            )
            expected[answer.headers["x-request-id"]] = answer.status_code
        bad = await client.post(
            "/v1/chat/completions", content=b"{", headers={"authorization": f"Bearer {MASTER}"}
        )
        expected[bad.headers["x-request-id"]] = bad.status_code
    assert sorted(expected.values()) == [200, 400, 400, 400, 401, 401, 429]
    for request_id, status in expected.items():
        row = await one_row(gateway, request_id)
        assert row["status_code"] == status
        if status != 200:
            assert row["metadata"]["attempts"] == 0 and row["spend"] == 0
    assert upstream.calls == 1


async def test_openai_answers_always_carry_an_id(gateway: InProcessGateway, upstream: Upstream) -> None:
    upstream.replies["chat"] = Reply(pieces=[orjson.dumps(completion())])  # the upstream's id is ""
    async with gateway.client() as http:
        client = openai.AsyncOpenAI(api_key=MASTER, base_url="http://gateway/v1", http_client=http)
        answer = await client.chat.completions.create(model="chat", messages=ASK)  # type: ignore[arg-type]
    assert answer.id.startswith("chatcmpl-") and len(answer.id) > len("chatcmpl-")


# ---------------------------------------------------------------------------------------------
# passthrough: admitted and accounted like every route
# ---------------------------------------------------------------------------------------------


async def test_passthrough_and_count_tokens_are_admitted_and_accounted(
    gateway: InProcessGateway, upstream: Upstream
) -> None:
    only_chat = await new_key(gateway, models=["chat"])
    upstream.replies["nova"] = Reply(
        headers={"content-type": "application/json", "x-amzn-bedrock-input-token-count": "7"},
        pieces=[b'{"echo": true}'],
    )
    async with gateway.client() as client:
        invoke = {"inputText": "x"}
        denied = await client.post(
            "/bedrock/model/nova/invoke", json=invoke, headers={"authorization": f"Bearer {only_chat}"}
        )
        count = {"model": "claude", "messages": ASK}
        counted = await client.post("/v1/messages/count_tokens", json=count, headers={"x-api-key": only_chat})
        allowed = await client.post(
            "/bedrock/model/nova/invoke", json=invoke, headers={"authorization": f"Bearer {MASTER}"}
        )
    assert (denied.status_code, denied.headers["x-amzn-errortype"]) == (403, "AccessDeniedException")
    assert counted.status_code == 401 and counted.json()["type"] == "error"
    assert allowed.status_code == 200 and upstream.calls == 1  # only the admitted call went upstream
    assert (await one_row(gateway, denied.headers["x-request-id"]))["status_code"] == 401
    assert (await one_row(gateway, counted.headers["x-request-id"]))["status_code"] == 401
    row = await one_row(gateway, allowed.headers["x-request-id"])
    assert (row["status_code"], row["prompt_tokens"], row["model_group"]) == (200, 7, "nova")
