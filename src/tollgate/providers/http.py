"""The upstream HTTP client shared by every provider, and the one place transport exceptions are
converted into ``GatewayError``s (DESIGN.md §2.5).

aiohttp rather than httpx: on this hot path it costs about a tenth of the CPU per request (see
docs/performance.md). One session per process keeps connection pools per upstream host with
keep-alive; it is created lazily inside the running event loop and closed on shutdown.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import aiohttp
from yarl import URL

from tollgate.errors import (
    GatewayError,
    UpstreamConnectionError,
    UpstreamTimeout,
)

DEFAULT_TIMEOUT = 600.0  # LiteLLM's default request timeout
CHUNK_SIZE = 64 * 1024


@dataclass(slots=True)
class UpstreamAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(slots=True)
class UpstreamStream:
    status: int
    headers: Mapping[str, str]
    response: aiohttp.ClientResponse
    provider: str
    read_timeout: float | None

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            with upstream_errors(self.provider):
                while True:
                    if self.read_timeout:
                        chunk = await asyncio.wait_for(self.response.content.readany(), self.read_timeout)
                    else:
                        chunk = await self.response.content.readany()
                    if not chunk:
                        return
                    yield chunk
        finally:
            self.response.release()

    async def read_all(self) -> bytes:
        try:
            with upstream_errors(self.provider):
                return await self.response.read()
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


class HttpClient:
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
            # Response bodies are never decompressed for a client that did not ask: skip auto_decompress
            # costs nothing for uncompressed JSON, and compressed upstream answers still work.
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),
                skip_auto_headers=("User-Agent",),
            )
            self._session = session
        return session

    async def post(
        self, url: str | URL, body: bytes, headers: Mapping[str, str], *, timeout: float | None, provider: str
    ) -> UpstreamAnswer:
        session = self._get()
        with upstream_errors(provider):
            # ``None``: the caller bounds the whole attempt (the router does), and a second timer
            # per request would only cost CPU.
            async with asyncio.timeout(timeout):
                async with session.post(url, data=body, headers=headers) as response:
                    data = await response.read()
                    return UpstreamAnswer(response.status, response.headers, data)

    async def get(
        self, url: str | URL, headers: Mapping[str, str], *, timeout: float | None, provider: str
    ) -> UpstreamAnswer:
        session = self._get()
        with upstream_errors(provider):
            async with asyncio.timeout(timeout or DEFAULT_TIMEOUT):
                async with session.get(url, headers=headers) as response:
                    data = await response.read()
                    return UpstreamAnswer(response.status, response.headers, data)

    async def open_stream(
        self, url: str | URL, body: bytes, headers: Mapping[str, str], *, timeout: float | None, provider: str
    ) -> UpstreamStream:
        """POST and return once the status line and headers arrived. ``timeout`` bounds the wait
        for the headers and then each gap between chunks."""
        session = self._get()
        with upstream_errors(provider):
            async with asyncio.timeout(timeout or DEFAULT_TIMEOUT):
                response = await session.post(url, data=body, headers=headers)
        return UpstreamStream(
            response.status, response.headers, response, provider, timeout or DEFAULT_TIMEOUT
        )

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
