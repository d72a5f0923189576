"""``tollgate fake-upstream``: the fake model of ``providers/fake.py`` served over HTTP in the real
wire formats (OpenAI chat/embeddings/models, Anthropic Messages, Bedrock Converse), for demos,
load tests and the test suite.

Bytes on the wire come from the same dialect modules the gateway uses, so they are the formats
real clients parse. Latency and stream pacing are configurable ranges (``--latency 1-3``,
``--chunk-delay 0.2-0.8`` seconds), as in the AWS gateways' load-testing fakes. A model name
containing ``error-<status>`` (e.g. ``openai/error-429``) answers with that upstream error in the
format of the route, with ``retry-after: 1`` on 429s.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tollgate.canonical import ChatRequest
from tollgate.dialects import (
    ChatDialect,
    anthropic_messages,
    bedrock_converse,
    openai_chat,
    openai_embeddings,
)
from tollgate.errors import GatewayError, upstream_error_for_status
from tollgate.providers import fake

_ERROR_MODEL = re.compile(r"error-(\d{3})")


@dataclass(frozen=True, slots=True)
class Pacing:
    latency: tuple[float, float] = (0.0, 0.0)
    chunk_delay: tuple[float, float] = (0.0, 0.0)


def parse_range(text: str) -> tuple[float, float]:
    """ "1-3" → (1.0, 3.0); "0.5" → (0.5, 0.5)."""
    low, sep, high = text.partition("-")
    a = float(low)
    b = float(high) if sep else a
    if a < 0 or b < a:
        raise ValueError(f"not a range of seconds: {text!r}")
    return a, b


def _pause(bounds: tuple[float, float], rng: random.Random) -> float:
    low, high = bounds
    return low if low == high else rng.uniform(low, high)


def _injected_error(model: str) -> GatewayError | None:
    match = _ERROR_MODEL.search(model)
    if not match:
        return None
    status = int(match.group(1))
    message = "Input is too long for requested model." if status == 400 else f"fake upstream error {status}"
    err = upstream_error_for_status(status, message, retry_after=1.0 if status == 429 else None)
    err.status = status
    return err


def create_fake_app(pacing: Pacing = Pacing(), rng: random.Random | None = None) -> Starlette:
    rng = rng or random.Random()

    async def chat(
        request: Request, dialect: ChatDialect, model: str | None = None, stream: bool | None = None
    ) -> Response:
        try:
            parsed: ChatRequest = dialect.parse_request(await request.body(), model=model)
        except GatewayError as exc:
            status, body, headers = dialect.render_error(exc)
            return Response(body, status, headers=dict(headers), media_type="application/json")
        if stream is not None:
            parsed = replace(parsed, stream=stream)
        await asyncio.sleep(_pause(pacing.latency, rng))
        injected = _injected_error(parsed.model)
        if injected is not None:
            status, body, headers = dialect.render_error(injected)
            return Response(body, status, headers=dict(headers), media_type="application/json")
        answer = fake.reply(parsed)
        if not parsed.stream:
            return Response(dialect.render_response(answer), media_type="application/json")
        encoder = dialect.stream_encoder(parsed)

        async def chunks() -> AsyncIterator[bytes]:
            for i, event in enumerate(fake.stream_events(answer)):
                if i:
                    delay = _pause(pacing.chunk_delay, rng)
                    if delay:
                        await asyncio.sleep(delay)
                data = encoder.encode(event)
                if data:
                    yield data
            tail = encoder.close()
            if tail:
                yield tail

        return StreamingResponse(chunks(), media_type=encoder.content_type)

    def route(dialect: ChatDialect) -> Callable[[Request], object]:
        async def handler(request: Request) -> Response:
            return await chat(request, dialect)

        return handler

    async def bedrock(request: Request) -> Response:
        stream = request.url.path.endswith("-stream")
        return await chat(request, bedrock_converse, model=request.path_params["model_id"], stream=stream)

    async def embeddings(request: Request) -> Response:
        try:
            parsed = openai_embeddings.parse_request(await request.body())
        except GatewayError as exc:
            status, body, headers = openai_chat.render_error(exc)
            return Response(body, status, headers=dict(headers), media_type="application/json")
        await asyncio.sleep(_pause(pacing.latency, rng))
        answer = fake.embed(parsed)
        return Response(
            openai_embeddings.render_response(answer, parsed.encoding_format, parsed.model),
            media_type="application/json",
        )

    async def models(request: Request) -> Response:
        data = [{"id": "fake-model", "object": "model", "created": 1700000000, "owned_by": "tollgate"}]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")

    app = Starlette()
    for prefix in ("", "/v1"):
        app.add_route(f"{prefix}/chat/completions", route(openai_chat), methods=["POST"])  # type: ignore[arg-type]
        app.add_route(f"{prefix}/embeddings", embeddings, methods=["POST"])
        app.add_route(f"{prefix}/models", models, methods=["GET"])
    app.add_route("/v1/messages", route(anthropic_messages), methods=["POST"])  # type: ignore[arg-type]
    app.add_route("/model/{model_id:path}/converse", bedrock, methods=["POST"])
    app.add_route("/model/{model_id:path}/converse-stream", bedrock, methods=["POST"])
    return app
