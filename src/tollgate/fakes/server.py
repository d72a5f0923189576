"""``tollgate fake-upstream``: the fake model of ``providers/fake.py`` served over HTTP in the real
wire formats (OpenAI chat/embeddings/models, Anthropic Messages, Bedrock Converse), for demos,
load tests and the test suite.

Bytes on the wire come from the same dialect modules the gateway uses, so they are the formats
real clients parse. Latency and stream pacing are configurable ranges (``--latency 1-3``,
``--chunk-delay 0.2-0.8`` seconds), as in the AWS gateways' load-testing fakes. A model name
containing ``error-<status>`` (e.g. ``openai/error-429``) answers with that upstream error in the
format of the route, with ``retry-after: 1`` on 429s.

Bedrock routes verify SigV4 like AWS whenever a request carries ``Authorization:
AWS4-HMAC-SHA256 …``: the test credentials are ``--aws-access-key-id`` /
``--aws-secret-access-key`` (defaults ``fakes.sigv4.TEST_ACCESS_KEY`` = ``AKIDTOLLGATETEST0001``
and ``TEST_SECRET_KEY`` = ``tollgate/test/secret/key/0001``); an unknown key gets 403
``UnrecognizedClientException``, a wrong signature 403 ``InvalidSignatureException``. Unsigned
requests are served as before. Bedrock InvokeModel answers Titan (``inputText``) and Cohere
(``texts``) embeddings and Anthropic-on-Bedrock bodies (``anthropic_version``), streamed or not;
``POST /v1/messages/count_tokens`` answers the fake's input-token count.

More behaviours for routing tests, also picked by the upstream model name (any prefix/suffix):
``hang`` never answers (until the client gives up), ``slow-<ms>`` answers after that delay,
``flaky-<n>`` fails with 503 on the first n calls per model name and then succeeds
(``flaky-<n>-<status>`` with that status instead; 429s carry ``retry-after: 1``),
``stream-error-after-<k>`` streams k events then an in-stream error in the route's format,
``stream-drop-after-<k>`` streams k events then drops the connection, and ``stream-cut-after-<k>``
streams k events then ends the body cleanly without the format's end marker, as an upstream (or a
proxy in between) that gives up would (non-streamed calls to the last three answer normally);
``transcript`` answers with every message it received, one ``role: text`` line each; ``held-<tag>``
waits for ``POST /_fake/release/<tag>`` (``fakes/holds.py``). ``GET /prompts/{id}/`` is Bedrock's
``GetPrompt`` (``fakes/prompts.py``). ``GET /_fake/calls`` returns ``{model name: calls}`` for this
process (``DELETE`` resets it), so tests can see which upstream a request reached. Guardrails
(ApplyGuardrail, Converse's ``guardrailConfig``) are in ``fakes/guardrails.py``.

Tests that need more (requests recorded, failures queued in the route's error format, Anthropic's
API key demanded, STS-issued credentials, a canned wire body, an in-stream error) pass a
``fakes.script.Script``; the CLI runs with an empty one.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tollgate.canonical import ChatRequest
from tollgate.dialects import ChatDialect
from tollgate.dialects.anthropic import messages as anthropic_messages
from tollgate.dialects.bedrock import converse as bedrock_converse
from tollgate.dialects.openai import chat as openai_chat
from tollgate.dialects.openai import embeddings as openai_embeddings
from tollgate.errors import GatewayError, InvalidRequest, upstream_error_for_status
from tollgate.fakes.behaviours import Calls, misbehave, stream_failure
from tollgate.fakes.guardrails import apply_guardrail_handlers, converse_guardrail
from tollgate.fakes.holds import Holds
from tollgate.fakes.invoke import aws_error, chunk_frame, invoke_anthropic, invoke_embedding, json_answer
from tollgate.fakes.prompts import get_prompt_route
from tollgate.fakes.script import Script, Wire
from tollgate.fakes.sigv4 import TEST_ACCESS_KEY, TEST_SECRET_KEY, sigv4_problem
from tollgate.framing.eventstream import CONTENT_TYPE as EVENT_STREAM
from tollgate.providers import fake

_MALFORMED = "Malformed input request, please reformat your input"
_WIRES: dict[ChatDialect, Wire] = {
    openai_chat: "openai",
    anthropic_messages: "anthropic",
    bedrock_converse: "bedrock",
}


@dataclass(frozen=True, slots=True)
class Pacing:
    latency: tuple[float, float] = (0.0, 0.0)
    chunk_delay: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True, slots=True)
class AwsTestCredentials:
    """The one access key the fake Bedrock accepts in SigV4 signatures."""

    access_key_id: str = TEST_ACCESS_KEY
    secret_access_key: str = TEST_SECRET_KEY


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


def _render_error(dialect: ChatDialect, err: GatewayError) -> Response:
    status, body, headers = dialect.render_error(err)
    return Response(body, status, headers=dict(headers), media_type="application/json")


def _signature_problem(request: Request, body: bytes, script: Script) -> Response | None:
    headers = {name.lower(): value for name, value in request.headers.items()}
    if not headers.get("authorization", "").startswith("AWS4-HMAC-SHA256 "):
        return None
    raw_path = request.scope["raw_path"].decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    if query:
        raw_path = f"{raw_path}?{query}"
    problem = sigv4_problem(
        request.method, raw_path, headers, body, script.aws_secrets, script.aws_session_tokens
    )
    return None if problem is None else aws_error(403, *problem)


def create_fake_app(
    pacing: Pacing = Pacing(),
    rng: random.Random | None = None,
    aws: AwsTestCredentials = AwsTestCredentials(),
    script: Script | None = None,
) -> Starlette:
    """The fake upstream app; ``script`` (``fakes/script.py``) adds a test's scripted behaviour."""
    rng = rng or random.Random()
    calls, holds = Calls(), Holds()
    script = script if script is not None else Script()
    script.aws_secrets.setdefault(aws.access_key_id, aws.secret_access_key)

    def signature_problem(request: Request, body: bytes) -> Response | None:
        return _signature_problem(request, body, script)

    def refused(request: Request, body: bytes, wire: Wire) -> Response | None:
        """Recorded, then refused for a bad signature (Bedrock) or as the script says."""
        script.note(request, body)
        if wire == "bedrock":
            rejected = signature_problem(request, body)
            if rejected is not None:
                return rejected
        return script.refusal(request, wire)

    async def chat(
        request: Request, dialect: ChatDialect, model: str | None = None, stream: bool | None = None
    ) -> Response:
        raw = await request.body()
        rejected = refused(request, raw, _WIRES[dialect])
        if rejected is not None:
            return rejected
        try:
            parsed: ChatRequest = dialect.parse_request(raw, model=model)
        except GatewayError as exc:
            status, body, headers = dialect.render_error(exc)
            return Response(body, status, headers=dict(headers), media_type="application/json")
        if stream is not None:
            parsed = replace(parsed, stream=stream)
        await asyncio.sleep(_pause(pacing.latency, rng))
        injected = await misbehave(request, parsed.model, calls)
        await holds.wait(parsed.model)
        if injected is not None:
            status, body, headers = dialect.render_error(injected)
            return Response(body, status, headers=dict(headers), media_type="application/json")
        answer = fake.reply(parsed, fake.transcript(parsed) if "transcript" in parsed.model else None)
        if dialect is bedrock_converse:
            answer = converse_guardrail(parsed, answer)
        if not parsed.stream:
            if script.reply is not None:
                return json_answer(script.reply)
            return Response(dialect.render_response(answer), media_type="application/json")
        encoder = dialect.stream_encoder(parsed)
        failure = stream_failure(parsed.model)
        last_error = script.stream_error

        async def chunks() -> AsyncIterator[bytes]:
            for i, event in enumerate(fake.stream_events(answer)):
                if failure is not None and i == failure.after:
                    if i:
                        # Let what was sent arrive on its own, as from a real upstream failing later.
                        await asyncio.sleep(0.1)
                    if failure.how == "drop":
                        raise ConnectionAbortedError(f"fake upstream dropped the stream after {i} events")
                    if failure.how == "cut":
                        return  # a clean end of the body, without the end marker
                    err = upstream_error_for_status(500, f"fake upstream failed after {i} events")
                    err.status = 500
                    yield encoder.error(err)
                    return
                if i:
                    delay = _pause(pacing.chunk_delay, rng)
                    if delay:
                        await asyncio.sleep(delay)
                data = encoder.encode(event)
                if data:
                    yield data
            tail = encoder.close() if last_error is None else encoder.error(last_error)
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
        raw = await request.body()
        rejected = refused(request, raw, "openai")
        if rejected is not None:
            return rejected
        try:
            parsed = openai_embeddings.parse_request(raw)
        except GatewayError as exc:
            status, body, headers = openai_chat.render_error(exc)
            return Response(body, status, headers=dict(headers), media_type="application/json")
        await asyncio.sleep(_pause(pacing.latency, rng))
        injected = await misbehave(request, parsed.model, calls)
        if injected is not None:
            return _render_error(openai_chat, injected)
        answer = fake.embed(parsed)
        return Response(
            openai_embeddings.render_response(answer, parsed.encoding_format, parsed.model),
            media_type="application/json",
        )

    async def invoke(request: Request) -> Response:
        raw = await request.body()
        rejected = refused(request, raw, "bedrock")
        if rejected is not None:
            return rejected
        model_id: str = request.path_params["model_id"]
        stream = request.url.path.endswith("-with-response-stream")
        await asyncio.sleep(_pause(pacing.latency, rng))
        injected = await misbehave(request, model_id, calls)
        if injected is not None:
            return _render_error(bedrock_converse, injected)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            return aws_error(400, "ValidationException", _MALFORMED)
        embedded = None if stream else invoke_embedding(model_id, body)
        if embedded is not None:
            return embedded
        if "anthropic_version" in body or "anthropic" in model_id:
            return invoke_anthropic(model_id, raw, stream)
        if stream:
            # The last chunk of a real InvokeModelWithResponseStream carries the invocation metrics.
            metrics = {"inputTokenCount": 1, "outputTokenCount": 1, "invocationLatency": 1}
            last = {"echo": body, "model": model_id, "amazon-bedrock-invocationMetrics": metrics}
            return Response(chunk_frame(last), media_type=EVENT_STREAM)
        return json_answer({"echo": body, "model": model_id})

    async def count_tokens(request: Request) -> Response:
        body = await request.body()
        rejected = refused(request, body, "anthropic")
        if rejected is not None:
            return rejected
        try:
            raw = orjson.loads(body)
            if not isinstance(raw, dict):
                raise InvalidRequest("body: expected an object", param="body")
            # count_tokens takes no max_tokens; the Messages parser wants one.
            parsed = anthropic_messages.parse_request(orjson.dumps({"max_tokens": 1, **raw}))
        except orjson.JSONDecodeError:
            return _render_error(anthropic_messages, InvalidRequest("request body is not valid JSON"))
        except GatewayError as exc:
            return _render_error(anthropic_messages, exc)
        return json_answer({"input_tokens": fake.input_tokens(parsed)})

    async def models(request: Request) -> Response:
        data = [{"id": "fake-model", "object": "model", "created": 1700000000, "owned_by": "tollgate"}]
        return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")

    async def call_counts(request: Request) -> Response:
        if request.method == "DELETE":
            calls.counts.clear()
        return json_answer(calls.counts)

    apply_guardrail, guardrail_calls = apply_guardrail_handlers(signature_problem)
    app = Starlette()
    app.add_route("/_fake/calls", call_counts, methods=["GET", "DELETE"])
    app.add_route("/_fake/guardrails", guardrail_calls, methods=["GET", "DELETE"])
    app.add_route("/guardrail/{identifier}/version/{version}/apply", apply_guardrail, methods=["POST"])
    for prefix in ("", "/v1"):
        app.add_route(f"{prefix}/chat/completions", route(openai_chat), methods=["POST"])  # type: ignore[arg-type]
        app.add_route(f"{prefix}/embeddings", embeddings, methods=["POST"])
        app.add_route(f"{prefix}/models", models, methods=["GET"])
    app.add_route("/v1/messages", route(anthropic_messages), methods=["POST"])  # type: ignore[arg-type]
    app.add_route("/model/{model_id:path}/converse", bedrock, methods=["POST"])
    app.add_route("/model/{model_id:path}/converse-stream", bedrock, methods=["POST"])
    app.add_route("/model/{model_id:path}/invoke", invoke, methods=["POST"])
    app.add_route("/model/{model_id:path}/invoke-with-response-stream", invoke, methods=["POST"])
    app.add_route("/v1/messages/count_tokens", count_tokens, methods=["POST"])
    prompts = get_prompt_route(signature_problem, calls.count)
    app.add_route("/prompts/{prompt_id:path}/", prompts, methods=["GET"])
    app.add_route("/_fake/release/{tag}", holds.release, methods=["POST"])
    return app
