"""``CoalescingStream``: what it hands the ASGI server, message by message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tollgate.edge.streaming import CoalescingStream


async def _run(
    body: AsyncIterator[bytes], sent: list[dict[str, Any]] | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    sent = [] if sent is None else sent
    closed: list[str] = []
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await never.wait()  # the client stays
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def close() -> None:
        closed.append("closed")

    stream = CoalescingStream(body, media_type="text/event-stream", headers={}, close=close)
    await stream({"type": "http"}, receive, send)
    return sent, closed


async def test_the_last_piece_of_the_body_ends_the_response_in_the_same_message() -> None:
    settled = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        yield b"data: 2\n\n"
        await asyncio.sleep(0)  # the accounting's round trip: the writer runs meanwhile
        settled.set()
        yield b"data: [DONE]\n\n"

    sent, closed = await _run(body())
    assert sent[0]["type"] == "http.response.start"
    bodies = sent[1:]
    assert b"".join(m["body"] for m in bodies) == b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n"
    assert [m["more_body"] for m in bodies] == [True, False]  # no empty terminator of its own
    assert bodies[-1]["body"] == b"data: [DONE]\n\n" and settled.is_set()
    assert closed == ["closed"]


async def test_a_body_that_fails_never_ends_the_response_as_complete() -> None:
    sent: list[dict[str, Any]] = []

    async def body() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        raise RuntimeError("upstream gone")

    with pytest.raises(RuntimeError, match="upstream gone"):
        await _run(body(), sent)
    assert sent[1:] and all(m["more_body"] for m in sent[1:])
