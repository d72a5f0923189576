"""RequestQueue: priority order, bounded size, max wait (injected clock, no real waiting)."""

from __future__ import annotations

import asyncio

import pytest

from tests.polling import until
from tollgate.errors import NoDeploymentAvailable
from tollgate.routing.queue import RequestQueue


class Tokens:
    """Capacity handed out one unit at a time by the test."""

    def __init__(self) -> None:
        self.free = 0

    async def ready(self) -> bool:
        if self.free > 0:
            self.free -= 1
            return True
        return False


async def test_lower_priority_value_goes_first_then_arrival_order() -> None:
    depths: list[int] = []
    queue = RequestQueue(
        "g",
        max_size=10,
        max_wait=60.0,
        clock=lambda: 0.0,
        default_priority=2,
        poll_interval=3600.0,
        on_depth=lambda name, depth: depths.append(depth),
    )
    tokens = Tokens()
    order: list[str] = []

    async def request(name: str, priority: int | None) -> None:
        await queue.wait(priority, tokens.ready)
        order.append(name)

    tasks = [
        asyncio.create_task(request(name, prio))
        for name, prio in [("p5", 5), ("p1", 1), ("default-a", None), ("p1-later", 1), ("default-b", None)]
    ]
    await until(lambda: queue.depth == 5, what="five requests queued")
    assert order == []
    for served in range(1, 6):
        tokens.free = 1
        queue.notify()
        await until(lambda n=served: len(order) == n, what=f"{served} requests served")  # type: ignore[misc]
    await asyncio.gather(*tasks)
    assert order == ["p1", "p1-later", "default-a", "default-b", "p5"]
    assert depths == [1, 2, 3, 4, 5, 4, 3, 2, 1, 0]


async def test_full_queue_and_expired_wait_fail_with_no_deployment_available() -> None:
    now = [0.0]
    queue = RequestQueue("g", max_size=1, max_wait=5.0, clock=lambda: now[0], poll_interval=3600.0)
    tokens = Tokens()
    first = asyncio.create_task(queue.wait(None, tokens.ready))
    await until(lambda: queue.depth == 1, what="the first request queued")
    with pytest.raises(NoDeploymentAvailable) as full:
        await queue.wait(None, tokens.ready)
    assert "queue is full" in full.value.message
    now[0] = 6.0
    queue.notify()
    with pytest.raises(NoDeploymentAvailable) as late:
        await first
    assert "waited 5s" in late.value.message
    assert queue.depth == 0
