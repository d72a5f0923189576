"""Background tasks of long-lived services (flush loops, heartbeats, listeners): how one stops.
May import: nothing from tollgate (stdlib only).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` (``None`` entries are skipped) and wait until each has ended; the
    cancellation each raises is theirs, not the caller's, so it is not propagated."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            await task
