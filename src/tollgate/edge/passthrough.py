"""Provider-native passthrough routes: Bedrock InvokeModel and the rest of the Anthropic API.

``POST /bedrock/model/{modelId}/invoke`` and ``/invoke-with-response-stream`` forward the
client's native body, SigV4-signed with the deployment's credentials, to the Bedrock deployment
of the model group named by ``modelId``; the stream is relayed as the upstream's raw
event-stream bytes. ``POST /anthropic/{path}`` (any path but ``v1/messages``, which is the
translated chat route) forwards the body, with its ``model`` replaced by the deployment's
upstream model, to the Anthropic deployment with the deployment's key.

Nothing is bypassed: each call goes through ``Gateway.native`` — authentication, model access,
budgets and rate limits (reserving the body's size / 4 input tokens and its ``max_tokens``),
then settlement with the usage read from the answer (``native_usage``) and a spend-log row.
Routing retries and fallbacks do not apply (the body is the provider's own; the group's first
deployment of that provider is used). Errors the gateway raises leave in the route's format
(Bedrock's ``x-amzn-ErrorType`` JSON, Anthropic's error object); upstream errors are relayed as
they are. A stream that ends before its last event ends with an error event in its format.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tollgate.accounting.landing import cancelled, failure
from tollgate.auth.principal import Principal
from tollgate.canonical import ChatRequest, EmbeddingRequest, Usage
from tollgate.config import Deployment
from tollgate.dialects.anthropic import messages as anthropic_messages
from tollgate.dialects.anthropic.errors import error_body as anthropic_error_body
from tollgate.dialects.bedrock import converse as bedrock_converse
from tollgate.dialects.bedrock.errors import STREAM_EXCEPTIONS
from tollgate.dialects.bounds import load_json
from tollgate.edge.count_tokens import CountTokens
from tollgate.edge.inference import Admittance, ErrorRenderer, error_response, internal_error
from tollgate.edge.native_usage import (
    AnthropicMeter,
    BedrockMeter,
    anthropic_event_usage,
    bedrock_usage,
)
from tollgate.errors import (
    GatewayError,
    InvalidRequest,
    NotFound,
    StreamTruncated,
    upstream_error_for_status,
)
from tollgate.framing.eventstream import encode_exception
from tollgate.framing.sse import encode as sse_encode
from tollgate.gateway import Passage
from tollgate.providers import NativeInvoker, NativeRelay
from tollgate.providers.http import UpstreamStream

log = logging.getLogger("tollgate.edge")

Deployments = Callable[[str], Sequence[Deployment]]
UsageOf = Callable[[bytes, Mapping[str, str]], Usage | None]
Meter = BedrockMeter | AnthropicMeter

# Upstream answer headers relayed to the client besides content-type.
_RELAYED_PREFIXES = ("x-amzn-", "anthropic-", "request-id", "retry-after")


def _relayed_headers(upstream: Mapping[str, str], request_id: str, group: str) -> dict[str, str]:
    headers = {
        name.lower(): value for name, value in upstream.items() if name.lower().startswith(_RELAYED_PREFIXES)
    }
    headers["x-request-id"] = request_id
    headers["x-litellm-model-group"] = group
    return headers


def _answered(status: int, route: str) -> GatewayError | None:
    """What the row says about an upstream answer relayed with ``status``."""
    if status < 400:
        return None
    err = upstream_error_for_status(status, f"passthrough {route} answered {status}")
    err.status = status
    return err


def _bedrock_cut(err: GatewayError) -> bytes:
    exception = STREAM_EXCEPTIONS.get(err.kind, "internalServerException")
    return encode_exception(exception, orjson.dumps({"message": err.message}))


def _anthropic_cut(err: GatewayError) -> bytes:
    return sse_encode(anthropic_error_body(err), "error")


def _request(
    model: str, data: Mapping[str, Any], deployments: Sequence[Deployment]
) -> ChatRequest | EmbeddingRequest:
    """What admission reserves for a native body: no output for an embedding group, else the
    body's ``max_tokens`` (the default reservation when it has none)."""
    if deployments and all(d.info.mode == "embedding" for d in deployments):
        return EmbeddingRequest(model=model, inputs=())
    max_tokens = data.get("max_tokens")
    valid = isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and 0 < max_tokens < 2**31
    return ChatRequest(model=model, messages=(), max_tokens=max_tokens if valid else None)


class Passthrough:
    def __init__(
        self, admittance: Admittance, deployments: Deployments, providers: Mapping[str, object]
    ) -> None:
        self._admittance = admittance
        self._gateway = admittance.gateway
        self._deployments = deployments
        self._providers = providers

    def routes(self) -> list[Route]:
        """Register these after the translated chat routes: ``/anthropic/v1/messages`` must win
        over the ``/anthropic/{path}`` catch-all."""
        count = CountTokens(self._admittance, self._providers).handle
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

    async def bedrock_invoke(self, http: Request) -> Response:
        model_id: str = http.path_params["model_id"]
        stream = http.url.path.endswith("/invoke-with-response-stream")
        provider = self._providers.get("bedrock")

        async def send(deployment: Deployment | None, body: bytes) -> UpstreamStream:
            if deployment is None:
                raise _no_deployment(model_id, "Bedrock")
            if not isinstance(provider, NativeInvoker):
                raise NotFound("no Bedrock provider is configured")
            return await provider.invoke(
                deployment, body, stream, headers=http.headers, timeout=deployment.timeout
            )

        return await self._serve(
            http, "bedrock", bedrock_converse.render_error, "bedrock_invoke", model_id, send,
            meter=BedrockMeter() if stream else None, cut=_bedrock_cut,
            usage_of=lambda body, headers: bedrock_usage(headers),
        )

    async def anthropic(self, http: Request) -> Response:
        path: str = http.path_params["path"]
        provider = self._providers.get("anthropic")

        async def send(deployment: Deployment | None, body: bytes) -> UpstreamStream:
            data = _json_object(body)
            if deployment is None:
                raise _no_deployment(str(data.get("model")), "Anthropic")
            if not isinstance(provider, NativeRelay):
                raise NotFound("no Anthropic provider is configured")
            data["model"] = deployment.upstream_model
            return await provider.passthrough(
                deployment, f"/{path}", orjson.dumps(data), http.headers, timeout=deployment.timeout
            )

        return await self._serve(
            http, "anthropic", anthropic_messages.render_error, f"anthropic/{path}", None, send,
            meter=AnthropicMeter(), cut=_anthropic_cut,
            usage_of=lambda answer, headers: anthropic_event_usage(_loads(answer), None),
        )

    async def _serve(
        self,
        http: Request,
        client_format: str,  # the route's wire format, which is also the provider it relays to
        render: ErrorRenderer,
        route: str,
        model: str | None,
        send: Callable[[Deployment | None, bytes], Awaitable[UpstreamStream]],
        *,
        meter: Meter | None,
        cut: Callable[[GatewayError], bytes],
        usage_of: UsageOf,
    ) -> Response:
        request_id = os.urandom(16).hex()
        received = self._admittance.clock()
        principal: Principal | None = None
        try:
            principal = await self._admittance.authenticate(http)
            body = await self._admittance.body(http, principal)
            data = _loads(body)
            data = data if isinstance(data, dict) else {}
            if model is None:
                model = data.get("model")
                if not isinstance(model, str) or not model:
                    raise InvalidRequest(
                        "model: field required to choose the Anthropic deployment", param="model"
                    )
            request = _request(model, data, self._deployments(model))
            call = self._admittance.call(
                principal, request, client_format, request_id, http, input_tokens=len(body) // 4
            )
        except GatewayError as exc:
            self._admittance.refused(exc, principal, model, client_format, request_id, http, received)
            return error_response(render, exc, request_id)
        except Exception as exc:
            err = GatewayError("internal error in the gateway; the server log has the details")
            self._admittance.refused(err, principal, model, client_format, request_id, http, received)
            return internal_error(render, exc, request_id)
        try:
            passage: Passage[UpstreamStream] = await self._gateway.native(
                call, client_format, lambda deployment: send(deployment, body)
            )
            return await self._relay(passage, meter, cut, usage_of, request_id, model, route)
        except GatewayError as exc:
            return error_response(render, exc, request_id)
        except Exception as exc:
            return internal_error(render, exc, request_id)

    async def _relay(
        self,
        passage: Passage[UpstreamStream],
        meter: Meter | None,
        cut: Callable[[GatewayError], bytes],
        usage_of: UsageOf,
        request_id: str,
        group: str,
        route: str,
    ) -> Response:
        upstream = passage.value
        headers = _relayed_headers(upstream.headers, request_id, group)
        headers.update(passage.headers)  # the x-ratelimit-* headers of admission
        media_type = upstream.headers.get("content-type", "application/json")
        streamed = media_type.startswith(("text/event-stream", "application/vnd.amazon.eventstream"))
        if meter is None or not streamed or upstream.status >= 400:
            try:
                answer = await upstream.read_all()
            except BaseException as exc:
                await passage.land(None, failure(exc))
                raise
            usage = usage_of(answer, upstream.headers) if upstream.status < 400 else None
            await passage.land(usage, _answered(upstream.status, route))
            return Response(answer, status_code=upstream.status, headers=headers, media_type=media_type)
        live = meter

        async def relay() -> AsyncGenerator[bytes, None]:
            error: GatewayError | None = None
            try:
                async for chunk in upstream.chunks():
                    live.feed(chunk)
                    yield chunk
                if not live.complete:
                    raise StreamTruncated(f"the upstream's {route} stream ended before its end")
            except GatewayError as exc:
                # The status line is gone: the client learns it from an error event of its format.
                error = exc
                log.warning("passthrough stream %s failed: %s", request_id, exc.message)
                yield cut(exc)
            except BaseException as exc:
                error = failure(exc)
                raise
            finally:
                await passage.land(live.usage, error)

        body = relay()

        async def close() -> None:  # after the response, however it ended (see inference._close)
            await body.aclose()
            await passage.land(live.usage, cancelled())
            upstream.close()

        return StreamingResponse(
            body, status_code=upstream.status, headers=headers, media_type=media_type,
            background=BackgroundTask(close),
        )


def _no_deployment(model: str, provider: str) -> InvalidRequest:
    return InvalidRequest(
        f"model '{model}' has no {provider} deployment; the native {provider} API can only be "
        f"passed through to one (use the translated chat routes instead)",
        param="model",
    )


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _json_object(body: bytes) -> dict[str, Any]:
    data = load_json(body)  # re-serialised below: it must be within the bounds orjson can write
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object", param="body")
    return data
