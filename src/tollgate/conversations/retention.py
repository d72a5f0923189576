"""The retention purge: deletes chat sessions past ``chat_history_retention_days`` at start-up and
then every ``interval`` seconds, in each gateway process (deleting is idempotent, so replicas
purging the same database at once only repeat each other's work)."""

from __future__ import annotations

import asyncio
import logging

from tollgate.background import cancel_and_wait
from tollgate.conversations.history import History

log = logging.getLogger("tollgate.conversations")
PURGE_INTERVAL = 3600.0


class RetentionPurge:
    def __init__(self, history: History, interval: float = PURGE_INTERVAL) -> None:
        self._history = history
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._history.settings.retention_days is not None:
            self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            try:
                purged = await self._history.purge()
                if purged:
                    log.info("purged %d chat sessions past retention", purged)
            except Exception:
                log.warning("could not purge expired chat sessions; will retry", exc_info=True)
            await asyncio.sleep(self._interval)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
