"""Upstream providers: *where and how* to send a canonical request (DESIGN.md §2.3).

A provider owns the base URL and path, credentials or SigV4 signing, and stream framing; every
field mapping is its dialect's. ``Provider`` is the protocol; the concrete table
(``openai``, ``anthropic``, ``bedrock``, ``fake``) is assembled by ``bootstrap``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tollgate.canonical import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamEvent,
)
from tollgate.config import Deployment

if TYPE_CHECKING:
    from tollgate.providers.http import UpstreamStream


@dataclass(frozen=True, slots=True)
class SendOptions:
    """How to send one attempt. ``timeout`` bounds the call (``None``: the caller bounds it, as
    the router does); for streams it also bounds each gap between chunks. ``drop_params`` leaves
    out what the upstream cannot take instead of refusing."""

    timeout: float | None = None
    drop_params: bool = False
    headers: tuple[tuple[str, str], ...] = ()  # e.g. W3C traceparent, forwarded to the upstream


DEFAULT_OPTIONS = SendOptions()


@dataclass(frozen=True, slots=True)
class RawResponse:
    """A provider-native answer relayed unchanged (passthrough routes)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class Provider(Protocol):
    name: str

    async def chat(
        self, deployment: Deployment, request: ChatRequest, options: SendOptions
    ) -> ChatResponse: ...

    async def chat_stream(
        self, deployment: Deployment, request: ChatRequest, options: SendOptions
    ) -> AsyncIterator[StreamEvent]:
        """Open the upstream stream. Returns once the upstream accepted the request (a non-2xx
        answer raises the mapped ``GatewayError`` here, so the router may retry or fall back);
        the iterator then yields canonical events and may raise ``GatewayError`` mid-stream."""
        ...

    async def embed(
        self, deployment: Deployment, request: EmbeddingRequest, options: SendOptions
    ) -> EmbeddingResponse: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class NativeInvoker(Protocol):
    """A provider that relays a provider-native body (Bedrock InvokeModel passthrough)."""

    async def invoke(
        self, deployment: Deployment, body: bytes, stream: bool,
        *, headers: Mapping[str, str] | None = None, timeout: float | None = None,
    ) -> UpstreamStream: ...


@runtime_checkable
class NativeRelay(Protocol):
    """A provider that relays any path of its API and counts tokens (the Anthropic passthrough)."""

    async def passthrough(
        self, deployment: Deployment, path: str, body: bytes, headers: Mapping[str, str],
        *, timeout: float | None = None,
    ) -> UpstreamStream: ...

    async def count_tokens(
        self, deployment: Deployment, request: ChatRequest, options: SendOptions
    ) -> int: ...
