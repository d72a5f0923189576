"""``RedisWire``: one pipelined connection to Redis for the counter store's hot path.

Every admission and settlement is one ``EVALSHA``; through redis-py each cost ~0.13 ms of Python
(connection-pool checkout, a ``wait_for`` task per send, generic reply callbacks) — more than all
of admission's own work. This connection is shared by every request of the process: the commands
of one turn of the event loop leave together in one write (hiredis packs them), and replies, which
Redis sends in order, resolve the waiting requests in order (hiredis parses them): ~0.015 ms per
call. redis-py still serves everything else (cache invalidation pub/sub, routing state) and parses
the URL here.

When the oldest unanswered command has waited ``timeout``, the connection is cut (every call
waiting on it fails, and the next call reconnects): a Redis that stopped answering must not hold
requests more than twice ``timeout``.
Failures raise ``WireError``; a Redis error reply raises ``hiredis.ReplyError``.
May import: nothing from tollgate (stdlib, hiredis, redis-py's URL parser).
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from typing import Any, cast

import hiredis
from redis.connection import parse_url


class WireError(ConnectionError):
    """Redis could not be reached, the connection broke, or it did not answer in time."""


class Script:
    """A Lua script sent by SHA, and by body once when Redis does not know it (``NOSCRIPT``)."""

    def __init__(self, body: str) -> None:
        self.body = body
        self.sha = hashlib.sha1(body.encode()).hexdigest()


class _Protocol(asyncio.Protocol):
    """One connection. A single watchdog timer, not one per call, checks the oldest unanswered
    command: replies come in order, so if it has waited ``timeout`` Redis has stopped answering."""

    def __init__(self, timeout: float) -> None:
        self.transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._reader = hiredis.Reader()
        self._outgoing: list[bytes] = []
        self._watchdog: asyncio.TimerHandle | None = None
        self._failure = "connection to Redis lost"

    def send(self, command: bytes) -> asyncio.Future[Any]:
        """Queue a command; all commands queued in one turn of the event loop leave in one write
        (one system call for the requests that were admitted together)."""
        loop = self._loop
        if not self._outgoing:
            loop.call_soon(self._flush)
        self._outgoing.append(command)
        waiter: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((waiter, loop.time()))
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._timeout, self._check)
        return waiter

    def _flush(self) -> None:
        outgoing, self._outgoing = self._outgoing, []
        if self.transport is not None:
            self.transport.write(b"".join(outgoing))

    def _check(self) -> None:
        self._watchdog = None
        if not self._waiting or self.transport is None:
            return
        waited = self._loop.time() - self._waiting[0][1]
        if waited >= self._timeout:
            # A Redis that stopped answering: fail everything waiting, the next call reconnects.
            self._failure = f"Redis did not answer within {self._timeout:g}s"
            transport, self.transport = self.transport, None
            transport.abort()
            return
        self._watchdog = self._loop.call_later(self._timeout - waited, self._check)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while (reply := self._reader.gets()) is not False:
            if not self._waiting:
                continue  # nothing asked for it (cannot happen unless Redis misbehaves)
            waiter, _ = self._waiting.popleft()
            if waiter.done():
                continue  # its caller gave up; the reply still arrives in its turn
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        reason = f"{self._failure}: {exc}" if exc is not None else self._failure
        while self._waiting:
            waiter, _ = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(WireError(reason))


class RedisWire:
    def __init__(self, url: str, *, timeout: float = 0.5, connect_timeout: float = 0.5) -> None:
        options: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
        self._host = str(options.get("host", "localhost"))
        self._port = int(options.get("port", 6379))
        self._path: str | None = options.get("path")
        self._tls = "SSL" in getattr(options.get("connection_class"), "__name__", "")
        self._verify = options.get("ssl_cert_reqs") not in ("none", "optional")
        self._hello: list[tuple[Any, ...]] = []
        if options.get("password") is not None:
            user = options.get("username")
            self._hello.append(("AUTH", user, options["password"]) if user else ("AUTH", options["password"]))
        if int(options.get("db") or 0):
            self._hello.append(("SELECT", int(options["db"])))
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def call(self, *args: Any) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.transport is None:
            protocol = await self._connect()
        return await self._send(protocol, args)

    async def script(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except hiredis.ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await self.call("EVAL", script.body, len(keys), *keys, *args)

    async def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()

    async def _send(self, protocol: _Protocol, args: tuple[Any, ...]) -> Any:
        if protocol.transport is None:
            raise WireError("connection to Redis lost")
        return await protocol.send(hiredis.pack_command(args))

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            current = self._protocol
            if current is not None and current.transport is not None:
                return current
            loop = asyncio.get_running_loop()
            protocol: _Protocol | None = None
            try:
                async with asyncio.timeout(self._connect_timeout):
                    def make() -> _Protocol:
                        return _Protocol(self._timeout)

                    if self._path is not None:
                        _, protocol = await loop.create_unix_connection(make, self._path)
                    else:
                        context = self._tls_context() if self._tls else None
                        _, protocol = await loop.create_connection(make, self._host, self._port, ssl=context)
                    for command in self._hello:
                        await self._send(protocol, command)
            except (OSError, TimeoutError, hiredis.ReplyError) as exc:
                if protocol is not None and protocol.transport is not None:
                    protocol.transport.abort()
                raise WireError(f"cannot connect to Redis: {type(exc).__name__}: {exc}") from exc
            self._protocol = protocol
            return protocol

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self._verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context
