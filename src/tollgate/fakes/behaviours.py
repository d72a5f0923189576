"""The fake upstream's behaviours picked by the upstream model name (``fakes/server.py`` lists
them): ``error-<status>``, ``hang``, ``slow-<ms>``, ``flaky-<n>[-<status>]`` and
``stream-{error,drop,cut}-after-<k>``, with the per-model call counts ``flaky`` needs."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from starlette.requests import Request

from tollgate.errors import GatewayError, upstream_error_for_status

_ERROR_MODEL = re.compile(r"error-(\d{3})")
_HANG_MODEL = re.compile(r"(?<![a-z])hang(?![a-z])")
_SLOW_MODEL = re.compile(r"slow-(\d+)")
_FLAKY_MODEL = re.compile(r"flaky-(\d+)(?:-(\d{3}))?")
_STREAM_FAIL_MODEL = re.compile(r"stream-(error|drop|cut)-after-(\d+)")
_HANG_LIMIT = 120.0  # a hung request still ends eventually, so the server can shut down


def _injected_error(model: str) -> GatewayError | None:
    match = _ERROR_MODEL.search(model)
    if not match:
        return None
    status = int(match.group(1))
    message = "Input is too long for requested model." if status == 400 else f"fake upstream error {status}"
    err = upstream_error_for_status(status, message, retry_after=1.0 if status == 429 else None)
    err.status = status
    return err


@dataclass(frozen=True, slots=True)
class StreamFailure:
    """``stream-<how>-after-<k>``: fail after ``after`` events; ``how`` is error, drop or cut."""

    after: int
    how: str


def stream_failure(model: str) -> StreamFailure | None:
    match = _STREAM_FAIL_MODEL.search(model)
    if not match:
        return None
    return StreamFailure(int(match.group(2)), match.group(1))


async def _hang(request: Request) -> None:
    """Wait until the client goes away (or a long while), as a stuck upstream would."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _HANG_LIMIT
    while loop.time() < deadline and not await request.is_disconnected():
        await asyncio.sleep(0.05)


class Calls:
    """Calls per model name for one app; ``flaky-<n>`` models fail while their count is ≤ n."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def count(self, model: str) -> int:
        n = self.counts.get(model, 0) + 1
        self.counts[model] = n
        return n


async def misbehave(request: Request, model: str, calls: Calls) -> GatewayError | None:
    """Count the call and act out the model name's behaviour; an error to answer with, or None."""
    n = calls.count(model)
    if _HANG_MODEL.search(model):
        await _hang(request)
        err = upstream_error_for_status(504, "fake upstream hung")
        err.status = 504
        return err
    slow = _SLOW_MODEL.search(model)
    if slow:
        await asyncio.sleep(int(slow.group(1)) / 1000)
    flaky = _FLAKY_MODEL.search(model)
    if flaky and n <= int(flaky.group(1)):
        status = int(flaky.group(2) or 503)
        retry_after = 1.0 if status == 429 else None
        err = upstream_error_for_status(status, f"fake upstream flaky: call {n} of {model} fails",
                                        retry_after=retry_after)
        err.status = status
        return err
    return _injected_error(model)
