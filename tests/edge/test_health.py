"""Readiness: every check reported, checks run together, a check that does not answer in time
fails instead of holding the probe, and the separate health port passes the gateway's answer on."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette

from tollgate.edge import health
from tollgate.edge.health import Health
from tollgate.edge.health_port import health_port_app


async def _never() -> tuple[bool, str]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def _app(checks: dict[str, health.Check]) -> Starlette:
    async def no_auth(request: object) -> object:
        raise AssertionError("readiness needs no authentication")

    app = Starlette()
    Health(lambda: (), {}, no_auth, checks).mount(app)  # type: ignore[arg-type]
    return app


async def _ready(app: Starlette) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.get("/health/readiness")


async def test_ready_while_every_check_passes() -> None:
    async def db() -> tuple[bool, str]:
        return True, "unreachable (connection refused): serving cached keys, database writes answer 503"

    async def counters() -> tuple[bool, str]:
        return True, "connected"

    answer = await _ready(_app({"db": db, "counters": counters}))
    assert answer.status_code == 200
    assert answer.json()["db"].startswith("unreachable")
    assert answer.json()["counters"] == "connected"


async def test_a_check_that_hangs_fails_in_bounded_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "CHECK_TIMEOUT", 0.05)

    async def fine() -> tuple[bool, str]:
        return True, "connected"

    answer = await _ready(_app({"db": fine, "counters": _never}))
    assert answer.status_code == 503
    assert answer.json() | {"tollgate_version": None} == {
        "status": "unhealthy",
        "tollgate_version": None,
        "litellm_version": None,
        "db": "connected",
        "counters": "no answer within 0.05s",
        "cache": None,
    }


async def test_the_health_port_passes_the_gateways_readiness_on() -> None:
    port_app = health_port_app("http://127.0.0.1:1", timeout=1.0)  # nothing listens there
    transport = httpx.ASGITransport(app=port_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
        alive = await client.get("/health/liveliness")
        ready = await client.get("/health/readiness")
    assert alive.json() == "I'm alive!"
    assert ready.status_code == 503
    assert "gateway not answering" in ready.json()["detail"]
