"""Wire formats ("dialects") and the protocol each one implements.

A dialect is a wire format, not a direction (DESIGN.md §1.1): the Anthropic Messages format is
spoken by Anthropic SDK clients *and* by the Anthropic upstream, so one module converts both
ways. Client side: ``parse_request`` → canonical, canonical → ``render_response`` /
``stream_encoder`` / ``render_error``. Upstream side: canonical → ``render_request``, upstream
bytes → ``parse_response`` / ``stream_decoder`` / ``parse_error``.

Dialect modules are pure: bytes and canonical values in, bytes and canonical values out; no
network, no logging, no module-level mutable state. They may import ``canonical``, ``errors``
and ``framing`` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from tollgate.canonical import ChatRequest, ChatResponse, StreamEvent
from tollgate.errors import GatewayError


class StreamDecoder(Protocol):
    """Turns an upstream's streamed body, fed in arbitrary byte chunks, into canonical events."""

    def feed(self, chunk: bytes) -> list[StreamEvent]: ...

    def finish(self) -> list[StreamEvent]:
        """Called once at the end of the body; returns any events still pending (for example a
        ``MessageStop`` whose usage arrived after the finish reason). Raises ``UpstreamError`` if
        the stream carried an error event."""
        ...


class StreamEncoder(Protocol):
    """Turns canonical events into the bytes a client of this dialect expects."""

    content_type: str

    def encode(self, event: StreamEvent) -> bytes: ...

    def error(self, err: GatewayError) -> bytes:
        """An in-stream error event, for failures after the first byte was sent."""
        ...

    def close(self) -> bytes:
        """Trailing bytes after the last event (e.g. ``data: [DONE]``)."""
        ...


class ChatDialect(Protocol):
    name: str

    # ---- client side -------------------------------------------------------------------------
    def parse_request(self, body: bytes, *, model: str | None = None) -> ChatRequest:
        """Parse a client body; raises ``InvalidRequest`` naming the bad field. ``model`` is
        given when the format carries it in the path (Bedrock)."""
        ...

    def render_response(self, response: ChatResponse) -> bytes: ...

    def stream_encoder(self, request: ChatRequest) -> StreamEncoder: ...

    def render_error(self, err: GatewayError) -> tuple[int, bytes, Mapping[str, str]]:
        """(status, body, extra headers) for an error in this dialect's shape."""
        ...

    # ---- upstream side -----------------------------------------------------------------------
    def render_request(
        self, request: ChatRequest, upstream_model: str, *, drop_params: bool
    ) -> dict[str, object]:
        """The JSON body to send upstream. Raises ``InvalidRequest`` for a parameter the format
        cannot carry unless ``drop_params`` is set, in which case it is left out."""
        ...

    def parse_response(self, body: bytes) -> ChatResponse: ...

    def stream_decoder(self) -> StreamDecoder: ...

    def parse_error(self, status: int, body: bytes, headers: Mapping[str, str]) -> GatewayError:
        """Map an upstream error answer to the most specific ``GatewayError``."""
        ...
