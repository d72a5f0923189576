"""Provider-native passthrough routes: Bedrock InvokeModel and the rest of the Anthropic API.

``POST /bedrock/model/{modelId}/invoke`` and ``/invoke-with-response-stream`` forward the
client's native body, SigV4-signed with the deployment's credentials, to the Bedrock deployment
of the model group named by ``modelId``; the stream is relayed as the upstream's raw
event-stream bytes. ``POST /anthropic/{path}`` (any path but ``v1/messages``, which is the
translated chat route) forwards the body, with its ``model`` replaced by the deployment's
upstream model, to the Anthropic deployment with the deployment's key.

Both are authenticated; errors the gateway raises leave in the route's format (Bedrock's
``x-amzn-ErrorType`` JSON, Anthropic's error object); upstream errors are relayed as they are.
Metering: usage is read from the answer (Bedrock's ``x-amzn-bedrock-*-token-count`` headers or
the stream's ``amazon-bedrock-invocationMetrics``; Anthropic's ``usage`` object or the stream's
``message_start`` / ``message_delta``) and handed to the ``UsageSink`` given, if any. Budgets,
rate limits and routing retries/fallbacks do not apply to these routes (the first deployment of
the right provider is used); spend is recorded only through that sink.
"""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tollgate.auth.principal import Principal
from tollgate.canonical import Usage
from tollgate.config import Deployment
from tollgate.dialects.anthropic import messages as anthropic_messages
from tollgate.dialects.anthropic.response import parse_usage
from tollgate.dialects.bedrock import converse as bedrock_converse
from tollgate.edge.count_tokens import CountTokens
from tollgate.edge.inference import ErrorRenderer, error_response, internal_error
from tollgate.errors import GatewayError, InvalidRequest, NotFound
from tollgate.framing.eventstream import EventStreamDecoder, EventStreamError
from tollgate.framing.sse import SseParser
from tollgate.providers import NativeInvoker, NativeRelay
from tollgate.providers.http import UpstreamStream

log = logging.getLogger("tollgate.edge")

Authenticate = Callable[[Request], Awaitable[Principal]]
Deployments = Callable[[str], Sequence[Deployment]]

# Upstream answer headers relayed to the client besides content-type.
_RELAYED_PREFIXES = ("x-amzn-", "anthropic-", "request-id", "retry-after")


class UsageSink(Protocol):
    """Where passthrough usage goes (accounting). Called once per request, after the answer."""

    async def record(
        self,
        principal: Principal,
        deployment: Deployment,
        usage: Usage | None,
        status: int,
        *,
        route: str,
        request_id: str,
        started: float,
    ) -> None: ...


def bedrock_usage(headers: Mapping[str, str]) -> Usage | None:
    """InvokeModel's usage headers (``x-amzn-bedrock-input-token-count`` / ``-output-``)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_in = lowered.get("x-amzn-bedrock-input-token-count")
    raw_out = lowered.get("x-amzn-bedrock-output-token-count")
    if raw_in is None and raw_out is None:
        return None
    try:
        return Usage(input_tokens=int(raw_in or 0), output_tokens=int(raw_out or 0))
    except ValueError:
        return None


def bedrock_metrics_usage(chunk: object) -> Usage | None:
    """``amazon-bedrock-invocationMetrics`` of a decoded stream chunk (the last one carries it)."""
    if not isinstance(chunk, dict):
        return None
    metrics = chunk.get("amazon-bedrock-invocationMetrics")
    if not isinstance(metrics, dict):
        return None
    tokens_in, tokens_out = metrics.get("inputTokenCount"), metrics.get("outputTokenCount")
    return Usage(
        input_tokens=tokens_in if isinstance(tokens_in, int) else 0,
        output_tokens=tokens_out if isinstance(tokens_out, int) else 0,
    )


def anthropic_event_usage(event: object, usage: Usage | None) -> Usage | None:
    """Usage so far after one Anthropic stream event (or a whole Messages answer)."""
    if not isinstance(event, dict):
        return usage
    if event.get("type") == "message_start" and isinstance(event.get("message"), dict):
        return parse_usage(event["message"].get("usage"), usage or Usage())
    if "usage" in event:  # message_delta, or a non-streamed message
        return parse_usage(event["usage"], usage or Usage())
    return usage


class _BedrockMeter:
    """Reads usage out of relayed InvokeModelWithResponseStream bytes without altering them."""

    def __init__(self) -> None:
        self._decoder: EventStreamDecoder | None = EventStreamDecoder()
        self.usage: Usage | None = None

    def feed(self, chunk: bytes) -> None:
        if self._decoder is None:
            return
        try:
            messages = self._decoder.feed(chunk)
        except EventStreamError:
            self._decoder = None  # the client gets the bytes anyway; only metering gives up
            return
        for message in messages:
            if message.event_type != "chunk":
                continue
            try:
                payload = orjson.loads(message.payload)
                inner = orjson.loads(base64.b64decode(payload.get("bytes", "")))
            except (orjson.JSONDecodeError, ValueError, AttributeError):
                continue
            self.usage = bedrock_metrics_usage(inner) or self.usage


class _AnthropicMeter:
    def __init__(self) -> None:
        self._parser = SseParser()
        self.usage: Usage | None = None

    def feed(self, chunk: bytes) -> None:
        for event in self._parser.feed(chunk):
            try:
                self.usage = anthropic_event_usage(orjson.loads(event.data), self.usage)
            except orjson.JSONDecodeError:
                continue


def _relayed_headers(upstream: Mapping[str, str], request_id: str, group: str) -> dict[str, str]:
    headers = {
        name.lower(): value for name, value in upstream.items() if name.lower().startswith(_RELAYED_PREFIXES)
    }
    headers["x-request-id"] = request_id
    headers["x-litellm-model-group"] = group
    return headers


class Passthrough:
    def __init__(
        self,
        deployments: Deployments,
        providers: Mapping[str, object],
        authenticate: Authenticate,
        sink: UsageSink | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._deployments = deployments
        self._providers = providers
        self._authenticate = authenticate
        self._sink = sink
        self._clock = clock

    def routes(self) -> list[Route]:
        """Register these after the translated chat routes: ``/anthropic/v1/messages`` must win
        over the ``/anthropic/{path}`` catch-all."""
        count = CountTokens(self._deployments, self._providers, self._authenticate).handle
        routes = [
            Route("/v1/messages/count_tokens", count, methods=["POST"], include_in_schema=False),
            Route("/anthropic/v1/messages/count_tokens", count, methods=["POST"], include_in_schema=False),
        ]
        for prefix in ("", "/bedrock"):
            for operation in ("invoke", "invoke-with-response-stream"):
                routes.append(
                    Route(
                        f"{prefix}/model/{{model_id:path}}/{operation}",
                        self.bedrock_invoke,
                        methods=["POST"],
                        include_in_schema=False,
                    )
                )
        routes.append(
            Route("/anthropic/{path:path}", self.anthropic, methods=["POST"], include_in_schema=False)
        )
        return routes

    def _deployment(self, model: str, provider: str, render: str) -> Deployment:
        found = next((d for d in self._deployments(model) if d.provider == provider), None)
        if found is None:
            raise InvalidRequest(
                f"model '{model}' has no {render} deployment; the native {render} API can only be "
                f"passed through to one (use the translated chat routes instead)",
                param="model",
            )
        return found

    async def bedrock_invoke(self, http: Request) -> Response:
        request_id = os.urandom(16).hex()
        started = self._clock()
        render: ErrorRenderer = bedrock_converse.render_error
        try:
            principal = await self._authenticate(http)
            model_id: str = http.path_params["model_id"]
            stream = http.url.path.endswith("/invoke-with-response-stream")
            deployment = self._deployment(model_id, "bedrock", "Bedrock")
            provider = self._providers.get("bedrock")
            if not isinstance(provider, NativeInvoker):
                raise NotFound("no Bedrock provider is configured")
            upstream = await provider.invoke(
                deployment, await http.body(), stream, headers=http.headers, timeout=deployment.timeout
            )
            meter = _BedrockMeter() if stream and upstream.status < 400 else None
            return await self._relay(
                upstream,
                meter,
                principal,
                deployment,
                request_id,
                started,
                model_id,
                "bedrock_invoke",
                usage_of=lambda body, headers: bedrock_usage(headers),
            )
        except GatewayError as exc:
            return error_response(render, exc, request_id)
        except Exception as exc:
            return internal_error(render, exc, request_id)

    async def anthropic(self, http: Request) -> Response:
        request_id = os.urandom(16).hex()
        started = self._clock()
        render: ErrorRenderer = anthropic_messages.render_error
        try:
            principal = await self._authenticate(http)
            path: str = http.path_params["path"]
            body = await http.body()
            data = _json_object(body)
            model = data.get("model")
            if not isinstance(model, str) or not model:
                raise InvalidRequest(
                    "model: field required to choose the Anthropic deployment", param="model"
                )
            deployment = self._deployment(model, "anthropic", "Anthropic")
            provider = self._providers.get("anthropic")
            if not isinstance(provider, NativeRelay):
                raise NotFound("no Anthropic provider is configured")
            data["model"] = deployment.upstream_model
            upstream = await provider.passthrough(
                deployment, f"/{path}", orjson.dumps(data), http.headers, timeout=deployment.timeout
            )
            streamed = upstream.headers.get("content-type", "").startswith("text/event-stream")
            meter = _AnthropicMeter() if streamed and upstream.status < 400 else None
            return await self._relay(
                upstream,
                meter,
                principal,
                deployment,
                request_id,
                started,
                model,
                f"anthropic/{path}",
                usage_of=lambda answer, headers: anthropic_event_usage(_loads(answer), None),
            )
        except GatewayError as exc:
            return error_response(render, exc, request_id)
        except Exception as exc:
            return internal_error(render, exc, request_id)

    async def _relay(
        self,
        upstream: UpstreamStream,
        meter: _BedrockMeter | _AnthropicMeter | None,
        principal: Principal,
        deployment: Deployment,
        request_id: str,
        started: float,
        group: str,
        route: str,
        *,
        usage_of: Callable[[bytes, Mapping[str, str]], Usage | None],
    ) -> Response:
        headers = _relayed_headers(upstream.headers, request_id, group)
        media_type = upstream.headers.get("content-type", "application/json")
        if meter is None:
            answer = await upstream.read_all()
            usage = usage_of(answer, upstream.headers) if upstream.status < 400 else None
            await self._record(principal, deployment, usage, upstream.status, route, request_id, started)
            return Response(answer, status_code=upstream.status, headers=headers, media_type=media_type)

        async def relay() -> AsyncIterator[bytes]:
            status = upstream.status
            try:
                async for chunk in upstream.chunks():
                    meter.feed(chunk)
                    yield chunk
            except GatewayError as exc:
                # The status line is gone; the stream just ends early, as an upstream cut would.
                status = exc.status
                log.warning("passthrough stream %s failed: %s", request_id, exc.message)
            finally:
                await self._record(principal, deployment, meter.usage, status, route, request_id, started)

        return StreamingResponse(relay(), status_code=upstream.status, headers=headers, media_type=media_type)

    async def _record(
        self,
        principal: Principal,
        deployment: Deployment,
        usage: Usage | None,
        status: int,
        route: str,
        request_id: str,
        started: float,
    ) -> None:
        if self._sink is None:
            return
        try:
            await self._sink.record(
                principal, deployment, usage, status, route=route, request_id=request_id, started=started
            )
        except Exception:
            log.exception("recording passthrough usage failed for %s", request_id)


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _json_object(body: bytes) -> dict[str, Any]:
    data = _loads(body)
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object", param="body")
    return data
