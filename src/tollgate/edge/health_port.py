"""The separate health port (LiteLLM's ``SEPARATE_HEALTH_APP``): probes on their own listener.

Liveliness is answered by this server's own event loop, in its own thread, so a replica that is
busy serving inference is never restarted for being slow to answer a probe. Readiness is not
guessed here: it asks the gateway's own ``/health/readiness`` over loopback (database, Redis
counters) and passes the answer on, so it is false until the workers are serving and false
again once they stop accepting connections during a shutdown. ``/health`` on this port answers
like readiness, so a check written for LiteLLM's health app (``curl -f :PORT/health``) passes
exactly when the gateway can serve.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

READINESS_TIMEOUT = 3.0  # below the usual probe timeout (Kubernetes 1 s is too tight for a DB read)


def _json(payload: object, status: int) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def loopback_url(host: str, port: int) -> str:
    """The gateway's own address as seen from inside the process, for any bind address."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _fetch(url: str, timeout: float) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as exc:  # a 503 from the gateway is an answer, not a failure
        return exc.code, exc.read()


def health_port_app(gateway_url: str, timeout: float = READINESS_TIMEOUT) -> Starlette:
    readiness_url = f"{gateway_url}/health/readiness"

    async def alive(request: Request) -> Response:
        return _json("I'm alive!", 200)

    async def ready(request: Request) -> Response:
        try:
            status, body = await asyncio.to_thread(_fetch, readiness_url, timeout)
        except (OSError, ValueError) as exc:
            detail = f"gateway not answering on {gateway_url} ({type(exc).__name__})"
            return _json({"status": "unhealthy", "detail": detail}, 503)
        return Response(body, status_code=status, media_type="application/json")

    app = Starlette()
    for path in ("/health/liveliness", "/health/liveness"):
        app.add_route(path, alive, methods=["GET"])
    for path in ("/health/readiness", "/health"):
        app.add_route(path, ready, methods=["GET"])
    return app


def serve_in_thread(app: Starlette, host: str, port: int) -> threading.Thread:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False))
    # uvicorn installs signal handlers only on the main thread, so this server leaves them alone;
    # it is a daemon thread and ends with the process, after the gateway has drained.
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name="health-port", daemon=True)
    thread.start()
    return thread
