"""``HotPaths``' lifespan: a served process freezes what start-up built (``gc.freeze``); an app a
test builds in its own process does not."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from tollgate.edge.dispatch import HotPaths


def _full_app() -> ASGIApp:
    raise AssertionError("the lifespan needs no full app")


async def _handler(request: Request) -> Response:
    raise AssertionError("no request is sent")


@pytest.mark.parametrize("served", [True, False])
async def test_a_served_app_freezes_what_start_up_built(served: bool) -> None:
    app = HotPaths(_full_app, post={}, get={}, bedrock=_handler, freeze_heap=served)
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    gc.unfreeze()
    try:
        await app({"type": "lifespan"}, receive, send)
        assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        assert (gc.get_freeze_count() > 0) is served
    finally:
        gc.unfreeze()
