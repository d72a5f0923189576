"""A bounded priority queue for requests that find every deployment of a group at its rpm/tpm cap.

Instead of failing at once, a saturated request waits (lower ``priority`` first, then arrival
order) up to ``max_wait`` seconds. Only the head of the queue probes for capacity, so a burst of
waiters costs one probe per wake-up; the router wakes the head when an attempt ends, and the head
also re-probes every ``poll_interval`` (capacity returns at the minute boundary or on another
replica without any local event). The router never touches a queue unless a group is saturated.
Imports only ``errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tollgate.errors import NoDeploymentAvailable

__all__ = ["RequestQueue"]


@dataclass(order=True, slots=True)
class _Waiter:
    priority: int
    seq: int
    event: asyncio.Event = field(compare=False, default_factory=asyncio.Event)


class RequestQueue:
    def __init__(
        self,
        name: str,
        *,
        max_size: int,
        max_wait: float,
        clock: Callable[[], float],
        default_priority: int = 0,
        poll_interval: float = 0.1,
        on_depth: Callable[[str, int], None] | None = None,
    ) -> None:
        self.name = name
        self._max_size = max_size
        self._max_wait = max_wait
        self._clock = clock
        self._default_priority = default_priority
        self._poll = poll_interval
        self._on_depth = on_depth
        self._heap: list[_Waiter] = []
        self._seq = itertools.count()

    @property
    def depth(self) -> int:
        return len(self._heap)

    def notify(self) -> None:
        """Capacity may have returned: let the head probe again."""
        if self._heap:
            self._heap[0].event.set()

    async def wait(self, priority: int | None, ready: Callable[[], Awaitable[bool]]) -> None:
        """Return once this request is at the head and ``ready()`` says capacity exists.

        Raises ``NoDeploymentAvailable`` when the queue is full or ``max_wait`` passes.
        """
        if len(self._heap) >= self._max_size:
            raise NoDeploymentAvailable(
                f"all deployments of '{self.name}' are at their rate limits and the queue is full "
                f"({self._max_size} waiting)"
            )
        waiter = _Waiter(self._default_priority if priority is None else priority, next(self._seq))
        heapq.heappush(self._heap, waiter)
        self._report()
        deadline = self._clock() + self._max_wait
        try:
            while True:
                if self._heap[0] is waiter and await ready():
                    return
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise NoDeploymentAvailable(
                        f"all deployments of '{self.name}' are at their rate limits; "
                        f"waited {self._max_wait:g}s in the queue",
                        retry_after=1.0,
                    )
                waiter.event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.event.wait(), min(self._poll, remaining))
        finally:
            self._remove(waiter)

    def _remove(self, waiter: _Waiter) -> None:
        was_head = bool(self._heap) and self._heap[0] is waiter
        try:
            self._heap.remove(waiter)
        except ValueError:
            return
        heapq.heapify(self._heap)
        self._report()
        if was_head:
            self.notify()

    def _report(self) -> None:
        if self._on_depth is not None:
            self._on_depth(self.name, len(self._heap))
