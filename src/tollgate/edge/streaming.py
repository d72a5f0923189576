"""``CoalescingStream``: a streamed response that writes whatever is ready in one piece.

An upstream usually delivers several stream events in one network read (a whole short answer
often arrives in one), and each event became one ``send`` — one system call to the client per
event, the biggest cost of a stream. Here the body is read by a producer task that buffers the
encoded chunks; the response's own task writes everything buffered whenever it gets to run, so
the chunks that were ready together leave together, and nothing waits: the writer runs as soon
as the producer has to wait for the upstream. A buffer above ``HIGH_WATER`` bytes makes the
producer wait for the writer (a slow client slows the upstream read, as before).

A client that disconnects (``http.disconnect`` from ``receive``) cancels the producer (again at
every step until it ends, as Starlette's anyio cancel scope did), so the body's own ``finally``
accounts for the request at once; ``close`` runs after the stream however
it ended (the relay's closing and the request span). This replaces Starlette's
``StreamingResponse.__call__`` (an anyio task group per stream on ASGI servers before spec 2.4).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

HIGH_WATER = 64 * 1024


class _Pump:
    """The producer's side: encoded chunks buffered until the writer takes them."""

    __slots__ = ("_body", "_loop", "_pending", "_room", "_size", "_waiter", "done", "error", "gone")

    def __init__(self, body: AsyncIterator[bytes]) -> None:
        self._body = body
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        self._size = 0
        self._waiter: asyncio.Future[None] | None = None
        self._room: asyncio.Future[None] | None = None
        self.done = False
        self.gone = False  # the client disconnected
        self.error: Exception | None = None

    async def produce(self) -> None:
        try:
            async for chunk in self._body:
                if not chunk:
                    continue
                self._pending.append(chunk)
                self._size += len(chunk)
                self._wake()
                if self._size >= HIGH_WATER:
                    self._room = self._loop.create_future()
                    await self._room
        except Exception as exc:
            self.error = exc
        finally:
            self.done = True
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def take(self) -> bytes | None:
        """Everything buffered, in one piece; None once the body has ended and all was taken."""
        pending = self._pending
        while not pending:
            if self.done:
                return None
            self._waiter = self._loop.create_future()
            await self._waiter
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self._size = 0
        room = self._room
        if room is not None:
            self._room = None
            if not room.done():
                room.set_result(None)
        return data


class CoalescingStream(StreamingResponse):
    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        media_type: str,
        headers: Mapping[str, str],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._close = close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self.body_iterator
        assert isinstance(body, AsyncIterator)
        pump = _Pump(body)
        loop = asyncio.get_running_loop()
        producer: asyncio.Task[None] | None = None
        listener: asyncio.Task[None] | None = None
        try:
            start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            await send(start)
            producer = loop.create_task(pump.produce())
            listener = loop.create_task(_watch(receive, pump, producer))
            ended = False
            while (data := await pump.take()) is not None:
                if pump.gone:
                    break
                # The body's last piece ends the response in the same write (chunk and terminator).
                ended = pump.done and pump.error is None
                await send({"type": "http.response.body", "body": data, "more_body": not ended})
            if pump.error is not None:
                raise pump.error
            if not pump.gone and not ended:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if listener is not None:
                listener.cancel()
            if producer is not None and not producer.done():
                _cancel(producer)
                await asyncio.wait((producer,))  # the body must stop before it is closed
            await self._close()


async def _watch(receive: Receive, pump: _Pump, producer: asyncio.Task[None]) -> None:
    """Wait for the client to go away; then stop reading the body."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
    if not pump.done:
        pump.gone = True
        _cancel(producer)


def _cancel(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and keep cancelling it at every step until it ends (as an anyio cancel
    scope does): a body whose clean-up awaits a stalled upstream must not hang the response."""
    if not task.done():
        task.cancel()
        asyncio.get_running_loop().call_soon(_cancel, task)
