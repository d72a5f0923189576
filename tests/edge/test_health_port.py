"""The separate health port: liveliness from its own server, readiness passed on from the
gateway's own answer (healthy, unhealthy, or not answering at all)."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from tests.e2e.servers import free_port
from tests.fakes.server import run_app_in_thread
from tollgate.edge.health_port import health_port_app, loopback_url


def _gateway(status: int, body: dict[str, str]) -> Starlette:
    async def readiness(request: Request) -> JSONResponse:
        return JSONResponse(body, status_code=status)

    app = Starlette()
    app.add_route("/health/readiness", readiness)
    return app


def test_readiness_is_the_gateways_own() -> None:
    report = {"status": "healthy", "db": "connected"}
    with (
        run_app_in_thread(_gateway(200, report)) as gateway,
        run_app_in_thread(health_port_app(gateway)) as health,
    ):
        for path in ("/health/readiness", "/health"):
            answer = httpx.get(health + path)
            assert (answer.status_code, answer.json()) == (200, report)


def test_unready_gateway_is_unready_here() -> None:
    report = {"status": "unhealthy", "db": "unreachable (OSError)"}
    with (
        run_app_in_thread(_gateway(503, report)) as gateway,
        run_app_in_thread(health_port_app(gateway)) as health,
    ):
        answer = httpx.get(f"{health}/health/readiness")
        assert (answer.status_code, answer.json()) == (503, report)


def test_silent_gateway_is_unready_but_alive() -> None:
    gateway = f"http://127.0.0.1:{free_port()}"  # nothing listens: starting, or stopped
    with run_app_in_thread(health_port_app(gateway, timeout=1.0)) as health:
        answer = httpx.get(f"{health}/health/readiness")
        assert answer.status_code == 503
        assert answer.json()["status"] == "unhealthy"
        assert gateway in answer.json()["detail"]
        for path in ("/health/liveliness", "/health/liveness"):
            assert httpx.get(health + path).json() == "I'm alive!"


def test_loopback_url_for_any_bind_address() -> None:
    assert loopback_url("0.0.0.0", 4000) == "http://127.0.0.1:4000"
    assert loopback_url("::", 4000) == "http://[::1]:4000"
    assert loopback_url("10.0.0.5", 4000) == "http://10.0.0.5:4000"
    assert loopback_url("fd00::5", 4000) == "http://[fd00::5]:4000"
