"""The upstream HTTP client shared by every provider, its transport seam, and the one place
transport exceptions are converted into ``GatewayError``s (DESIGN.md §2.5).

``HttpClient`` owns timeouts and error mapping; a ``Transport`` (one method, as httpx's
transports) only moves bytes. ``AiohttpTransport`` is the production one: aiohttp rather than
httpx because on this hot path it costs about a tenth of the CPU per request (see
docs/performance.md); one session per process keeps connection pools per upstream host with
keep-alive; it is created lazily inside the running event loop and closed on shutdown. Tests
give ``HttpClient`` a scripted transport instead, to drive the gateway without sockets.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from yarl import URL

from tollgate.errors import (
    GatewayError,
    UpstreamConnectionError,
    UpstreamTimeout,
)

DEFAULT_TIMEOUT = 600.0  # LiteLLM's default request timeout


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str | URL  # a yarl.URL is sent as is (SigV4 signs the exact, already encoded path)
    headers: Mapping[str, str]
    body: bytes = b""


class ResponseBody(Protocol):
    """An upstream answer whose status and headers have arrived; the body is read on demand."""

    status: int
    headers: Mapping[str, str]

    async def read_chunk(self) -> bytes:
        """The next bytes of the body, as they arrive; ``b""`` at its end."""
        ...

    async def read_all(self) -> bytes: ...

    def release(self) -> None:
        """The body was read: the connection may serve another request."""
        ...

    def close(self) -> None:
        """Drop the connection (the body may be unread)."""
        ...


class Transport(Protocol):
    async def send(self, request: UpstreamRequest) -> ResponseBody:
        """Send the request; return once the status line and headers arrived."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class UpstreamAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(slots=True)
class UpstreamStream:
    status: int
    headers: Mapping[str, str]
    response: ResponseBody
    provider: str
    read_timeout: float | None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            with upstream_errors(self.provider):
                while True:
                    if self.read_timeout:
                        chunk = await asyncio.wait_for(self.response.read_chunk(), self.read_timeout)
                    else:
                        chunk = await self.response.read_chunk()
                    if not chunk:
                        return
                    yield chunk
        finally:
            self.response.release()

    async def read_all(self) -> bytes:
        try:
            with upstream_errors(self.provider):
                return await self.response.read_all()
        finally:
            self.response.release()

    def close(self) -> None:
        self.response.close()


@contextmanager
def upstream_errors(provider: str) -> Iterator[None]:
    """Convert aiohttp/asyncio failures into the gateway's error classes, once, here."""
    try:
        yield
    except GatewayError:
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise UpstreamTimeout(f"{provider} upstream timed out", provider=provider) from exc
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamConnectionError(
            f"cannot connect to the {provider} upstream: {exc.os_error.strerror or exc}", provider=provider
        ) from exc
    except (aiohttp.ClientError, ConnectionError) as exc:
        raise UpstreamConnectionError(
            f"{provider} upstream connection failed: {type(exc).__name__}", provider=provider
        ) from exc


class _AiohttpBody:
    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read_chunk(self) -> bytes:
        return await self._response.content.readany()

    async def read_all(self) -> bytes:
        return await self._response.read()

    def release(self) -> None:
        self._response.release()

    def close(self) -> None:
        self._response.close()


class AiohttpTransport:
    """A lazily created aiohttp session with pooled keep-alive connections."""

    def __init__(self, *, pool_size: int = 0, verify_tls: bool | ssl.SSLContext = True) -> None:
        """``verify_tls``: ``False`` skips certificate checks; a context brings its own CA bundle."""
        self._session: aiohttp.ClientSession | None = None
        self._pool_size = pool_size
        self._verify_tls = verify_tls

    def _get(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size,
                ttl_dns_cache=300,
                ssl=self._verify_tls,
                keepalive_timeout=30,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),  # HttpClient bounds every call
                skip_auto_headers=("User-Agent",),
            )
            self._session = session
        return session

    async def send(self, request: UpstreamRequest) -> ResponseBody:
        response = await self._get().request(
            request.method, request.url, data=request.body if request.method != "GET" else None,
            headers=request.headers,
        )
        return _AiohttpBody(response)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


class HttpClient:
    """Timeouts and error mapping over a ``Transport`` (aiohttp unless one is given)."""

    def __init__(self, transport: Transport | None = None) -> None:
        self._transport: Transport = transport or AiohttpTransport()

    async def _whole(self, request: UpstreamRequest, timeout: float | None, provider: str) -> UpstreamAnswer:
        with upstream_errors(provider):
            async with asyncio.timeout(timeout):
                response = await self._transport.send(request)
                try:
                    data = await response.read_all()
                finally:
                    response.release()
                return UpstreamAnswer(response.status, response.headers, data)

    async def post(
        self, url: str | URL, body: bytes, headers: Mapping[str, str], *, timeout: float | None, provider: str
    ) -> UpstreamAnswer:
        # ``timeout=None``: the caller bounds the whole attempt (the router does), and a second
        # timer per request would only cost CPU.
        return await self._whole(UpstreamRequest("POST", url, headers, body), timeout, provider)

    async def get(
        self, url: str | URL, headers: Mapping[str, str], *, timeout: float | None, provider: str
    ) -> UpstreamAnswer:
        return await self._whole(UpstreamRequest("GET", url, headers), timeout or DEFAULT_TIMEOUT, provider)

    async def open_stream(
        self, url: str | URL, body: bytes, headers: Mapping[str, str], *, timeout: float | None, provider: str
    ) -> UpstreamStream:
        """POST and return once the status line and headers arrived. ``timeout`` bounds the wait
        for the headers and then each gap between chunks."""
        with upstream_errors(provider):
            async with asyncio.timeout(timeout or DEFAULT_TIMEOUT):
                response = await self._transport.send(UpstreamRequest("POST", url, headers, body))
        return UpstreamStream(
            response.status, response.headers, response, provider, timeout or DEFAULT_TIMEOUT
        )

    async def aclose(self) -> None:
        await self._transport.aclose()
