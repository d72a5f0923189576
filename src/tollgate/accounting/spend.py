"""The spend log writer: a ``Ledger`` sink that queues one ``SpendRow`` per finished request and
writes them to the store in batches, off the request path.

Delivery promise (docs/observability.md, "Spend log"):

* clean stop (SIGTERM → lifespan shutdown): ``stop`` flushes everything; if the database is down
  then, the rows stay in the spill file and are written by the next start;
* crash (SIGKILL, OOM kill): every row is appended to this process's spill file within
  ``SPILL_INTERVAL`` (100 ms) of its request finishing; the next start (any worker) replays the
  file. At most the rows of the last 100 ms are lost. Power loss may lose more (no fsync);
* database down: rows queue in memory up to ``max_queued``, then only in the spill file; writes
  retry with back-off and drain memory, then the spilled backlog, when it returns.

The store's ``record_spend`` skips request ids it already has, so replays never count twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from tollgate.accounting.spend_rows import decode, encode, spend_row
from tollgate.accounting.spill import SpillDir, read_lines
from tollgate.background import cancel_and_wait
from tollgate.call import Attempted
from tollgate.config.durations import before, parse_duration
from tollgate.store import SpendStore
from tollgate.store.records import SpendRow

log = logging.getLogger("tollgate.spend")
SPILL_INTERVAL = 0.1
MAX_BACKOFF = 30.0
STOP_TIMEOUT = 20.0


class SpendLog:
    """Call it with each finished request (a few µs); ``start``/``stop`` run the background writer."""

    def __init__(
        self,
        store: SpendStore,
        spill_dir: Path,
        *,
        interval: float = 1.0,
        batch_size: int = 500,
        max_queued: int = 50_000,
        store_prompts: bool = False,
    ) -> None:
        self._store = store
        self._spill_dir = spill_dir
        self._interval = max(interval, 0.01)
        self._batch = max(batch_size, 1)
        self._max_queued = max(max_queued, self._batch)
        self._store_prompts = store_prompts
        self._queue: deque[tuple[SpendRow, bytes]] = deque()
        self._overflow = False  # rows past max_queued live only in the spill file
        self._spill: SpillDir | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._failures = 0
        self._lock = asyncio.Lock()
        self._stopping = False

    @property
    def queued(self) -> int:
        return len(self._queue)

    def __call__(self, attempted: Attempted, cost: Decimal) -> None:
        row = spend_row(attempted, cost, store_prompts=self._store_prompts)
        line = encode(row)
        if self._spill is not None:
            self._spill.append(line)
        if self._overflow or len(self._queue) >= self._max_queued:
            if not self._overflow:
                log.warning("spend log: %d rows queued; spilling to disk only", len(self._queue))
            self._overflow = True
            return
        self._queue.append((row, line))
        if len(self._queue) >= self._batch:
            self._wake.set()

    async def start(self) -> None:
        self._spill = SpillDir(self._spill_dir)
        # Rows recorded before start (none in practice) still reach the file.
        for _, line in self._queue:
            self._spill.append(line)
        backlog = self._spill.adopt_orphans()
        if backlog:
            log.warning("spend log: replaying %d spill file(s) left by a stopped process", len(backlog))
        self._tasks = [asyncio.create_task(self._spill_loop()), asyncio.create_task(self._flush_loop())]
        if backlog:
            self._wake.set()

    async def stop(self) -> None:
        # The flag as well as the cancel: on Python 3.11, a cancel that lands as the flush loop's
        # wait_for sees its wake-up event set is swallowed, and the loop would wait again.
        self._stopping = True
        self._wake.set()
        await cancel_and_wait(*self._tasks)
        self._tasks = []
        done = False
        try:
            done = await asyncio.wait_for(self.flush(), STOP_TIMEOUT)
        except Exception:
            log.warning("spend log: final flush failed; rows stay in the spill file", exc_info=True)
        if self._spill is not None:
            # Not done: the file already holds every unwritten row; the next start replays it.
            self._spill.close(remove=done)
            self._spill = None

    async def _spill_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(SPILL_INTERVAL)
            if self._spill is not None:
                try:
                    self._spill.flush_buffer()
                except OSError:
                    log.warning("spend log: cannot write the spill file", exc_info=True)

    async def _flush_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            if self._stopping:
                return
            self._wake.clear()
            if not await self.flush(drain=False):
                # Back off: a wake-up from a full batch must not hammer a database that is down.
                await asyncio.sleep(min(self._interval * 2**self._failures, MAX_BACKOFF))

    async def flush(self, *, drain: bool = True) -> bool:
        """Write everything queued, then any spilled backlog; ``False`` if the store failed.

        ``drain=False`` (the periodic flush) writes only the rows queued when it starts: rows that
        arrive while a batch is being written wait for the next flush instead of being chased in
        ever smaller batches, which under steady load kept the writer busy with a batch of a few
        dozen rows after another (each batch costs the same dozen statements whatever its size)."""
        async with self._lock:
            try:
                await self._flush_queue(None if drain else len(self._queue))
                await self._flush_backlog()
            except Exception as exc:
                self._failures += 1
                log.warning("spend log: database write failed (%s); %d rows queued", exc, len(self._queue))
                return False
            self._failures = 0
            return True

    async def _flush_queue(self, limit: int | None) -> None:
        """Write the queue in batches: all of it, or only its first ``limit`` rows."""
        wrote = False
        while self._queue and (limit is None or limit > 0):
            size = self._batch if limit is None else min(self._batch, limit)
            batch = [row for row, _ in itertools.islice(self._queue, size)]
            await self._store.record_spend(batch)
            for _ in batch:
                self._queue.popleft()
            wrote = True
            if limit is not None:
                limit -= len(batch)
        if self._spill is None:
            return
        if self._overflow:
            # The file holds the overflowed rows too: drain it as a backlog from here on.
            self._spill.rotate_to_backlog()
            self._overflow = False
        elif wrote:
            self._spill.compact([line for _, line in self._queue])

    async def _flush_backlog(self) -> None:
        if self._spill is None:
            return
        for path in self._spill.backlog():
            for lines in read_lines(path, self._batch):
                await self._store.record_spend([decode(line) for line in lines])
            path.unlink()


def retention_cutoff(period: str, now: datetime) -> datetime:
    return before(parse_duration(period, "maximum_spend_logs_retention_period"), now)


class RetentionPurge:
    """Deletes spend-log rows older than ``maximum_spend_logs_retention_period``, hourly."""

    def __init__(
        self,
        store: SpendStore,
        period: str,
        *,
        every: float = 3600.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        retention_cutoff(period, now())  # a bad period refuses to start, naming the setting
        self._store = store
        self._period = period
        self._every = every
        self._now = now
        self._task: asyncio.Task[None] | None = None

    async def purge(self) -> int:
        return await self._store.purge_spend_logs(retention_cutoff(self._period, self._now()))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            try:
                purged = await self.purge()
                if purged:
                    log.info("spend log retention: purged %d rows", purged)
            except Exception:
                log.warning("spend log retention purge failed", exc_info=True)
            await asyncio.sleep(self._every)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
