"""Waiting for a condition in tests: poll it until it holds or a deadline passes.

Tests never sleep to let something happen; they wait for the thing itself, here. The deadline
only bounds a failure (a generous one costs nothing when the condition comes true at once), and
the poll interval is short, so a passing test waits no longer than the system needs. This module
is the only place in the tests that sleeps.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

INTERVAL = 0.02


def wait_until(
    condition: Callable[[], T], *, timeout: float = 10.0, interval: float = INTERVAL, what: str = "condition"
) -> T:
    """The first truthy value ``condition()`` returns; ``AssertionError`` after ``timeout`` seconds.
    Exceptions from ``condition`` propagate."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not hold within {timeout}s (last value: {value!r})")
        time.sleep(interval)


async def until(
    condition: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 10.0,
    interval: float = INTERVAL,
    what: str = "condition",
) -> T:
    """``wait_until`` inside an event loop: the other tasks run while it waits. ``condition`` may
    be a plain function (state another task changes) or return an awaitable."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not hold within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)
