"""The gateway in-process, for tests of its lifecycle: ``bootstrap.build`` with an upstream
``Transport`` that never opens a socket, driven by the official SDKs over ``httpx.ASGITransport``
or by a raw ASGI client that can disconnect at any moment.

Upstreams are either scripted (``ScriptedTransport``: a function from the request to a
``Reply`` — status, headers and body pieces, optionally stalling or breaking after some) or the
fake upstream app of ``tollgate fake-upstream`` run in-process (``AsgiTransport``), which speaks
every wire format and acts out the behaviours its model names ask for.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.types import ASGIApp, Message

from tests import polling
from tollgate.bootstrap import build
from tollgate.config import parse_config
from tollgate.providers.http import ResponseBody, Transport, UpstreamRequest

# ---------------------------------------------------------------------------------------------
# upstream transports
# ---------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """A scripted upstream answer. ``stall_after``: after that many pieces the body waits until
    the gateway closes it; ``break_after``: after that many pieces the connection resets."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=lambda: {"content-type": "application/json"})
    pieces: list[bytes] = field(default_factory=list)
    stall_after: int | None = None
    break_after: int | None = None


async def _read_all(body: ResponseBody) -> bytes:
    chunks = []
    while chunk := await body.read_chunk():
        chunks.append(chunk)
    return b"".join(chunks)


class _ScriptedBody:
    def __init__(self, reply: Reply, transport: ScriptedTransport) -> None:
        self.status = reply.status
        self.headers = reply.headers
        self._reply = reply
        self._sent = 0
        self._transport = transport
        self._closed = asyncio.Event()

    async def read_chunk(self) -> bytes:
        reply = self._reply
        if reply.stall_after is not None and self._sent >= reply.stall_after:
            self._transport.stalled.set()
            await self._closed.wait()  # never answers; the gateway must give up or close
            raise ConnectionResetError("closed while stalled")
        if reply.break_after is not None and self._sent >= reply.break_after:
            raise ConnectionResetError("the scripted upstream broke the connection")
        if self._sent >= len(reply.pieces):
            return b""
        self._sent += 1
        return reply.pieces[self._sent - 1]

    async def read_all(self) -> bytes:
        return await _read_all(self)

    def release(self) -> None:
        self._transport.released += 1
        self._closed.set()

    def close(self) -> None:
        self._transport.closed += 1
        self._closed.set()


class ScriptedTransport:
    """``script(request) -> Reply`` answers every upstream request; ``requests`` records them."""

    def __init__(self, script: Callable[[UpstreamRequest], Reply]) -> None:
        self._script = script
        self.requests: list[UpstreamRequest] = []
        self.released = 0
        self.closed = 0
        self.stalled = asyncio.Event()

    async def send(self, request: UpstreamRequest) -> ResponseBody:
        self.requests.append(request)
        return _ScriptedBody(self._script(request), self)

    async def aclose(self) -> None:
        return None


class _AsgiBody:
    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        queue: asyncio.Queue[bytes | BaseException],
        gone: asyncio.Event,
    ) -> None:
        self.status = status
        self.headers = headers
        self._queue = queue
        self._gone = gone  # tells the app its client left, as a closed socket would
        self._done = False

    async def read_chunk(self) -> bytes:
        if self._done:
            return b""
        item = await self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise ConnectionResetError(f"the upstream app failed: {item}")
        if not item:
            self._done = True
        return item

    async def read_all(self) -> bytes:
        return await _read_all(self)

    def release(self) -> None:
        self._done = True
        self._gone.set()

    def close(self) -> None:
        self._done = True
        self._gone.set()


class AsgiTransport:
    """Sends upstream requests to an ASGI app (the fake upstream) in the same event loop."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, request: UpstreamRequest) -> ResponseBody:
        url = httpx.URL(str(request.url))
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
            "scheme": url.scheme, "path": url.path, "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query, "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in request.headers.items()],
            "server": (url.host, url.port or 80), "client": ("127.0.0.1", 1),
        }
        body_sent = False
        started: asyncio.Future[tuple[int, dict[str, str]]] = asyncio.get_running_loop().create_future()
        queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
        gone = asyncio.Event()

        async def receive() -> Message:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": request.body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
                started.set_result((message["status"], headers))
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body:
                    queue.put_nowait(body)
                if not message.get("more_body", False):
                    queue.put_nowait(b"")

        async def run() -> None:
            try:
                await self._app(scope, receive, send)
            except BaseException as exc:  # a fake that "drops the connection" raises
                if not started.done():
                    started.set_exception(ConnectionResetError(str(exc)))
                queue.put_nowait(exc)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            status, headers = await started
        except BaseException:
            gone.set()  # the gateway gave up waiting (a timeout): the app sees its client leave
            raise
        return _AsgiBody(status, headers, queue, gone)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()


# ---------------------------------------------------------------------------------------------
# the gateway
# ---------------------------------------------------------------------------------------------


class ManualClock:
    """A wall clock that moves only when a test says so: cooldowns, usage windows and budget
    windows then expire exactly when ``advance`` is called, never because the machine was slow."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class InProcessGateway:
    """The ASGI app ``bootstrap.build`` makes for ``config``, started (lifespan) and stopped.
    ``clock``: the gateway's wall clock (a ``ManualClock`` for tests of time-based behaviour)."""

    def __init__(
        self,
        config: Mapping[str, Any],
        transport: Transport,
        env: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        environment = dict(env or {})
        self.metric_output = io.StringIO()  # the JSON metric lines (``litellm_settings.json_logs``)
        parsed = parse_config(dict(config), env=environment)
        with contextlib.redirect_stdout(self.metric_output):
            self.app = build(parsed, env=environment, transport=transport, clock=clock)
        self._lifespan: asyncio.Queue[Message] = asyncio.Queue()
        self._sent: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> InProcessGateway:
        self._task = asyncio.get_running_loop().create_task(
            self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, self._lifespan.get, self._sent.put)
        )
        await self._lifespan.put({"type": "lifespan.startup"})
        message = await self._sent.get()
        assert message["type"] == "lifespan.startup.complete", message
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._lifespan.put({"type": "lifespan.shutdown"})
        await self._sent.get()
        if self._task is not None:
            await self._task

    def metric_lines(self) -> list[dict[str, Any]]:
        import orjson

        lines = self.metric_output.getvalue().splitlines()
        return [orjson.loads(line) for line in lines if line.startswith("{") and "litellm_metric" in line]

    def anthropic_http(self) -> Any:
        """The anthropic SDK brings its own httpx fork (``httpx2``); its client for this app."""
        import httpx2

        return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=self.app), base_url="http://gateway")

    def client(self, **headers: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url="http://gateway", headers=headers, timeout=30)

    async def stream(
        self,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        disconnect: Callable[[list[bytes]], bool] = lambda chunks: False,
    ) -> tuple[int, list[bytes]]:
        """POST through the raw ASGI interface; the client "disconnects" (``http.disconnect``)
        as soon as ``disconnect(chunks so far)`` says so. Returns the status and the chunks."""
        status = 0
        chunks: list[bytes] = []
        gone = asyncio.Event()
        sent_body = False

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                if message.get("body"):
                    chunks.append(message["body"])
                if disconnect(chunks):
                    gone.set()
            if gone.is_set():
                await asyncio.sleep(0)

        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "server": ("gateway", 80), "client": ("127.0.0.1", 1),
        }
        await self.app(scope, receive, send)
        return status, chunks

    async def spend_rows(
        self, master: str, request_id: str = "", *, at_least: int = 1, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """``/spend/logs`` rows (of one request, or all), polled until ``at_least`` of them are
        there (the log is batched) or ``timeout`` seconds pass."""
        found: list[dict[str, Any]] = []
        async with self.client(authorization=f"Bearer {master}") as client:

            async def enough() -> bool:
                nonlocal found
                params = {"request_id": request_id, "page_size": 1000}
                found = (await client.get("/spend/logs", params=params)).json()
                return len(found) >= at_least

            await until(enough, timeout)
        return found


@contextlib.asynccontextmanager
async def running(
    config: Mapping[str, Any], transport: Transport, env: Mapping[str, str] | None = None
) -> AsyncIterator[InProcessGateway]:
    async with InProcessGateway(config, transport, env) as gateway:
        yield gateway


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> bool:
    """Poll ``condition`` (``tests.polling``) until it holds or ``timeout`` seconds pass; whether it held."""
    try:
        return bool(await polling.until(condition, timeout=timeout))
    except AssertionError:
        return False
