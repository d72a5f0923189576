"""Glue between an open upstream byte stream and a dialect's ``StreamDecoder``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tollgate.canonical import StreamEvent
from tollgate.dialects import StreamDecoder
from tollgate.providers.http import UpstreamStream


async def decode_stream(stream: UpstreamStream, decoder: StreamDecoder) -> AsyncIterator[StreamEvent]:
    """Yield canonical events as upstream chunks arrive; the connection is released at the end,
    on error, and when the consumer stops early (client disconnect)."""
    try:
        async for chunk in stream.chunks():
            for event in decoder.feed(chunk):
                yield event
        for event in decoder.finish():
            yield event
    finally:
        stream.close()
