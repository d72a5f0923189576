"""Request limits at the edge: body size, and the params every request must carry.

Bodies are read through ``read_body``, which refuses a declared ``content-length`` above the
limit without reading anything and stops reading a chunked body as soon as it passes the limit,
so no more than the limit is ever held in memory. The limit is LiteLLM's
``general_settings.max_request_size_mb`` (``DEFAULT_MAX_REQUEST_MB`` when unset). Routes served
by the full app (admin API, passthrough) get the same limit from ``BodyLimit``, an ASGI wrapper,
with the 413 in the format the path speaks.

``enforced_params`` (``general_settings.enforced_params`` and a key's ``metadata.enforced_params``,
as LiteLLM): each entry names a body field every request must carry, ``a.b`` a nested one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollgate.config import Config
from tollgate.edge.dispatch import route_path
from tollgate.errors import ClientDisconnected, GatewayError, InvalidRequest, PayloadTooLarge

DEFAULT_MAX_REQUEST_MB = 32.0  # Anthropic's own limit for a Messages request
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RequestLimits:
    max_body_bytes: int = int(DEFAULT_MAX_REQUEST_MB * MB)
    enforced_params: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Config) -> RequestLimits:
        general = config.general
        megabytes = general.max_request_size_mb or DEFAULT_MAX_REQUEST_MB
        return cls(int(megabytes * MB), tuple(general.enforced_params))


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body is larger than the gateway's limit of {limit / MB:g} MB "
        "(general_settings.max_request_size_mb)",
        param="body",
    )


def declared_size(headers: Mapping[str, str]) -> int | None:
    raw = headers.get("content-length")
    if raw is None:
        return None
    try:
        size = int(raw)
    except ValueError:
        raise InvalidRequest("content-length is not a number", param="content-length") from None
    if size < 0:
        raise InvalidRequest("content-length is negative", param="content-length")
    return size


async def read_body(http: Request, limit: int) -> bytes:
    """The whole body, or ``PayloadTooLarge`` once more than ``limit`` bytes are declared or seen."""
    declared = declared_size(http.headers)
    if declared is not None and declared > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in http.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientDisconnected("the client disconnected while sending its request") from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def enforced_params(limits: RequestLimits, key_metadata: Mapping[str, Any]) -> tuple[str, ...]:
    extra = key_metadata.get("enforced_params")
    if isinstance(extra, list) and extra:
        return (*limits.enforced_params, *(p for p in extra if isinstance(p, str)))
    return limits.enforced_params


def check_enforced(params: Sequence[str], body: bytes) -> None:
    """``InvalidRequest`` naming the first enforced param the body lacks."""
    if not params:
        return
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return  # the dialect's parser reports the bad body in its own words
    for param in params:
        value: Any = data
        for name in param.split("."):
            value = value.get(name) if isinstance(value, dict) else None
            if value is None:
                raise InvalidRequest(
                    f"BadRequest please pass param={param} in request body. This is a required param",
                    param=param,
                )


ErrorRenderer = Callable[[GatewayError], tuple[int, bytes, Mapping[str, str]]]


def renderer_for_path(path: str) -> ErrorRenderer:
    """The error format a path speaks: Bedrock's, Anthropic's, else OpenAI's (the admin API's)."""
    if path.startswith(("/bedrock/", "/model/")):
        from tollgate.dialects.bedrock import converse

        return converse.render_error
    if path.startswith(("/anthropic/", "/v1/messages")):
        from tollgate.dialects.anthropic import messages

        return messages.render_error
    from tollgate.dialects.openai import chat

    return chat.render_error


class BodyLimit:
    """ASGI wrapper for the routes the edge does not read itself: a declared size above the
    limit is refused at once; a chunked body is read up to the limit, then replayed to the app."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self._app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            declared = declared_size(headers)
            if declared is not None and declared > self._limit:
                raise too_large(self._limit)
            if declared is None:
                receive = await self._buffered(receive)
        except GatewayError as exc:
            await self._refuse(scope, send, exc)
            return
        await self._app(scope, receive, send)

    async def _buffered(self, receive: Receive) -> Receive:
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self._limit:
                raise too_large(self._limit)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        return replay

    async def _refuse(self, scope: Scope, send: Send, err: GatewayError) -> None:
        status, body, extra = renderer_for_path(route_path(scope))(err)
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
        if not any(name == b"content-type" for name, _ in headers):
            headers.append((b"content-type", b"application/json"))
        headers.append((b"connection", b"close"))  # the unread body must not be taken for a request
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
