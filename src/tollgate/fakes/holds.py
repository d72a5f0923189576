"""Held requests for ordering tests: a request whose upstream model name contains ``held-<tag>``
is answered only once ``POST /_fake/release/<tag>`` was called (or after ``HOLD_LIMIT``
seconds), so a test can keep one request in flight while others run, without sleeping.
A tag once released stays released."""

from __future__ import annotations

import asyncio
import contextlib
import re

from starlette.requests import Request
from starlette.responses import Response

HOLD_LIMIT = 60.0
_HELD = re.compile(r"held-([0-9a-z]+)")


class Holds:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def _event(self, tag: str) -> asyncio.Event:
        return self._events.setdefault(tag, asyncio.Event())

    async def wait(self, model: str) -> None:
        match = _HELD.search(model)
        if match is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event(match.group(1)).wait(), HOLD_LIMIT)

    async def release(self, request: Request) -> Response:
        self._event(request.path_params["tag"]).set()
        return Response(status_code=204)
