"""Run an ASGI app on a real loopback port in a background thread, for the length of a test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.polling import wait_until


@contextmanager
def run_app_in_thread(app: ASGIApp, *, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 at a free port; yields its base URL (no trailing slash)."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        loop="asyncio",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="fake-upstream", daemon=True)
    thread.start()
    def started() -> bool:
        if not thread.is_alive():
            raise RuntimeError("the fake upstream server did not start")
        return bool(server.started)

    wait_until(started, timeout=startup_timeout, what="the fake upstream server started")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)


Responder = Callable[[str, bytes], tuple[int, Mapping[str, str], bytes]]


@contextmanager
def responding(respond: Responder) -> Iterator[str]:
    """A loopback server answering every POST with ``respond(raw path, body)`` → (status, headers,
    body): bytes a test made, for tests of what a client (boto3, an SDK) makes of them. Model
    upstreams are ``tollgate.fakes.server``'s, not this."""

    async def handle(request: Request) -> Response:
        status, headers, payload = respond(request.scope["raw_path"].decode("latin-1"), await request.body())
        return Response(payload, status, headers=dict(headers))

    with run_app_in_thread(Starlette(routes=[Route("/{rest:path}", handle, methods=["POST"])])) as url:
        yield url
