"""``UpstreamStream.chunks``: each read of a streamed body has ``read_timeout`` to arrive."""

from __future__ import annotations

import asyncio

import pytest

from tollgate.errors import UpstreamTimeout
from tollgate.providers.http import UpstreamStream


class _Stalls:
    """A body that delivers its chunks, then stops sending without ending."""

    def __init__(self, *chunks: bytes) -> None:
        self.status = 200
        self.headers: dict[str, str] = {}
        self._chunks = list(chunks)
        self.released = False

    async def read_chunk(self) -> bytes:
        if self._chunks:
            return self._chunks.pop(0)
        await asyncio.Event().wait()
        return b""

    async def read_all(self) -> bytes:
        raise NotImplementedError

    def release(self) -> None:
        self.released = True

    def close(self) -> None:
        self.released = True


async def test_a_stream_that_stalls_after_its_first_chunks_times_out_and_is_released() -> None:
    body = _Stalls(b"data: 1\n\n", b"data: 2\n\n")
    stream = UpstreamStream(200, {}, body, "fake", 0.05)
    got: list[bytes] = []
    with pytest.raises(UpstreamTimeout):
        async for chunk in stream.chunks():
            got.append(chunk)
    assert got == [b"data: 1\n\n", b"data: 2\n\n"] and body.released


async def test_chunks_that_keep_coming_are_read_to_the_end() -> None:
    body = _Stalls(b"a", b"b", b"")
    stream = UpstreamStream(200, {}, body, "fake", 0.05)
    assert [chunk async for chunk in stream.chunks()] == [b"a", b"b"] and body.released
