"""Thin inference handlers: authenticate → read (size-limited) → parse (dialect) → gateway → render.

One handler serves every chat dialect; the route decides which dialect it is. Errors anywhere
leave in that dialect's shape (``render_error``); a bug becomes a 500 in the same shape, logged
with its traceback on the server and never sent to the client. Requests refused here, before
the gateway has them (bad credentials, a body too large or malformed, a missing enforced
param), are still accounted (``Gateway.refused``): a spend-log row and a metric line each.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from functools import partial

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tollgate.auth.principal import Principal
from tollgate.call import Call
from tollgate.canonical import ChatRequest, EmbeddingRequest, StreamEvent
from tollgate.dialects import ChatDialect, StreamEncoder
from tollgate.dialects.openai import chat as openai_chat
from tollgate.dialects.openai import embeddings as openai_embeddings
from tollgate.edge.limits import RequestLimits, check_enforced, enforced_params, read_body
from tollgate.edge.streaming import CoalescingStream
from tollgate.errors import GatewayError
from tollgate.gateway import Gateway, StreamResult
from tollgate.policy.tokens import estimate_input_tokens
from tollgate.telemetry.tracing import NO_TRACING, SpanHandle, Tracing

log = logging.getLogger("tollgate.edge")

Authenticate = Callable[[Request], Awaitable[Principal]]
ErrorRenderer = Callable[[GatewayError], tuple[int, bytes, Mapping[str, str]]]

INTERNAL_ERROR = "internal error in the gateway; the server log has the details"
# Who a request refused before authentication is accounted to: nobody.
ANONYMOUS = Principal(kind="key")


def error_response(render: ErrorRenderer, err: GatewayError, request_id: str | None = None) -> Response:
    status, body, headers = render(err)
    out = dict(headers)
    if request_id:
        out["x-request-id"] = request_id
    out.setdefault("content-type", "application/json")
    return Response(body, status_code=status, headers=out)


def internal_error(render: ErrorRenderer, exc: BaseException, request_id: str | None) -> Response:
    log.error("unhandled error in request %s", request_id, exc_info=exc)
    return error_response(render, GatewayError(INTERNAL_ERROR), request_id)


def request_tags(request: Request) -> tuple[str, ...]:
    raw = request.headers.get("x-tollgate-tags") or request.headers.get("x-litellm-tags")
    return tuple(t.strip() for t in raw.split(",") if t.strip()) if raw else ()


class Admittance:
    """What every route does before the gateway has a request: authenticate, read the body
    within the size limit, check enforced params; and account for the requests refused there."""

    def __init__(
        self,
        gateway: Gateway,
        authenticate: Authenticate,
        limits: RequestLimits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gateway = gateway
        self.authenticate = authenticate
        self.limits = limits
        self.clock = clock

    async def body(self, http: Request, principal: Principal) -> bytes:
        body = await read_body(http, self.limits.max_body_bytes)
        check_enforced(enforced_params(self.limits, principal.metadata), body)
        return body

    def call(
        self,
        principal: Principal,
        request: ChatRequest | EmbeddingRequest,
        client_format: str,
        request_id: str,
        http: Request,
        *,
        input_tokens: int | None = None,
    ) -> Call:
        return Call(
            principal=principal,
            request=request,
            client_format=client_format,
            request_id=request_id,
            received_at=self.clock(),
            tags=request_tags(http),
            input_tokens=estimate_input_tokens(request) if input_tokens is None else input_tokens,
        )

    def refused(
        self,
        err: GatewayError,
        principal: Principal | None,
        model: str | None,
        client_format: str,
        request_id: str,
        http: Request,
        received_at: float,
    ) -> None:
        request = ChatRequest(model=model or "", messages=())
        call = Call(
            principal=principal or ANONYMOUS, request=request, client_format=client_format,
            request_id=request_id, received_at=received_at, tags=request_tags(http), input_tokens=0,
        )
        self.gateway.refused(call, err)


class Inference:
    def __init__(self, admittance: Admittance, tracing: Tracing = NO_TRACING):
        self._gateway = admittance.gateway
        self._admittance = admittance
        self._clock = admittance.clock
        self._tracing = tracing

    def _root(self, client_format: str, request_id: str) -> SpanHandle:
        if not self._tracing.enabled:
            return self._tracing.open("tollgate.request")
        return self._tracing.open(
            "tollgate.request", {"client_format": client_format, "request_id": request_id}
        )

    async def _auth(self, http: Request) -> Principal:
        with self._tracing.span("auth"):
            return await self._admittance.authenticate(http)

    async def chat(
        self, http: Request, dialect: ChatDialect, model: str | None = None, stream: bool | None = None
    ) -> Response:
        request_id = os.urandom(16).hex()
        root = self._root(dialect.name, request_id)
        response: Response | None = None
        try:
            with self._tracing.current(root):
                response = await self._chat(http, dialect, model, stream, request_id, root)
            return response
        finally:
            # A stream's span ends with the stream (``_encode``); everything else ends here.
            if not isinstance(response, StreamingResponse):
                root.set("status", response.status_code if response is not None else 500)
                root.end()

    async def _chat(
        self,
        http: Request,
        dialect: ChatDialect,
        model: str | None,
        stream: bool | None,
        request_id: str,
        root: SpanHandle,
    ) -> Response:
        received = self._clock()
        principal: Principal | None = None
        try:
            principal = await self._auth(http)
            chat = dialect.parse_request(await self._admittance.body(http, principal), model=model)
            root.set("model", chat.model)
            if stream is not None and chat.stream != stream:
                chat = replace(chat, stream=stream)  # Bedrock says "stream" in the path, not the body
            call = self._admittance.call(principal, chat, dialect.name, request_id, http)
            encoder = dialect.stream_encoder(chat) if chat.stream else None
        except GatewayError as exc:
            self._admittance.refused(exc, principal, model, dialect.name, request_id, http, received)
            return error_response(dialect.render_error, exc, request_id)
        except Exception as exc:
            err = GatewayError(INTERNAL_ERROR)
            self._admittance.refused(err, principal, model, dialect.name, request_id, http, received)
            return internal_error(dialect.render_error, exc, request_id)
        # From here on the gateway accounts for the request, whatever happens.
        try:
            if encoder is not None:
                opened = await self._gateway.chat_stream(call)
                headers = opened.headers
                headers["x-request-id"] = request_id
                headers["cache-control"] = "no-cache"
                body = _encode(opened.events, encoder, request_id, self._tracing, root)
                return CoalescingStream(
                    body,
                    media_type=encoder.content_type,
                    headers=headers,
                    close=partial(_close, body, opened, root),
                )
            result = await self._gateway.chat(call)
            result.headers["x-request-id"] = request_id
            return Response(
                dialect.render_response(result.response),
                media_type="application/json",
                headers=result.headers,
            )
        except GatewayError as exc:
            return error_response(dialect.render_error, exc, request_id)
        except Exception as exc:
            return internal_error(dialect.render_error, exc, request_id)

    async def embeddings(self, http: Request) -> Response:
        request_id = os.urandom(16).hex()
        root = self._root("openai", request_id)
        status = 500
        try:
            with self._tracing.current(root):
                response = await self._embeddings(http, request_id, root)
            status = response.status_code
            return response
        finally:
            root.set("status", status)
            root.end()

    async def _embeddings(self, http: Request, request_id: str, root: SpanHandle) -> Response:
        received = self._clock()
        principal: Principal | None = None
        render = openai_chat.render_error
        try:
            principal = await self._auth(http)
            embedding = openai_embeddings.parse_request(await self._admittance.body(http, principal))
            root.set("model", embedding.model)
            call = self._admittance.call(principal, embedding, "openai", request_id, http)
        except GatewayError as exc:
            self._admittance.refused(exc, principal, None, "openai", request_id, http, received)
            return error_response(render, exc, request_id)
        except Exception as exc:
            err = GatewayError(INTERNAL_ERROR)
            self._admittance.refused(err, principal, None, "openai", request_id, http, received)
            return internal_error(render, exc, request_id)
        try:
            result = await self._gateway.embed(call)
            result.headers["x-request-id"] = request_id
            body = openai_embeddings.render_response(
                result.response, embedding.encoding_format, embedding.model
            )
            return Response(body, media_type="application/json", headers=result.headers)
        except GatewayError as exc:
            return error_response(render, exc, request_id)
        except Exception as exc:
            return internal_error(render, exc, request_id)


async def _encode(
    events: AsyncIterator[StreamEvent],
    encoder: StreamEncoder,
    request_id: str,
    tracing: Tracing,
    root: SpanHandle,
) -> AsyncIterator[bytes]:
    """Encode canonical events for the client. After the first byte, failures become an in-stream
    error event in the client's format; the stream still ends properly. The request's span
    (``root``) stays current while the stream runs and ends with it."""
    status = 200
    try:
        with tracing.current(root):
            try:
                async for event in events:
                    data = encoder.encode(event)
                    if data:
                        yield data
            except GatewayError as exc:
                status = exc.status
                yield encoder.error(exc)
            except Exception as exc:
                status = 500
                log.error("unhandled error in stream %s", request_id, exc_info=exc)
                yield encoder.error(GatewayError(INTERNAL_ERROR))
            tail = encoder.close()
            if tail:
                yield tail
    finally:
        root.set("status", status)
        root.end()


async def _close(body: AsyncIterator[bytes], opened: StreamResult, root: SpanHandle) -> None:
    """After a streamed response, however it ended: a client that went away can leave the body
    suspended (or never started); close it and its relay so the request is accounted now."""
    close = getattr(body, "aclose", None)
    if close is not None:
        await close()
    await opened.close()
    root.end()
