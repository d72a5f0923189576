"""The spend-log sink: row contents, batching, the spill file and its replay, DB-down queueing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from tests.accounting.helpers import attempted
from tests.polling import until
from tollgate.accounting.spend import SpendLog, retention_cutoff
from tollgate.accounting.spend_rows import decode, encode, spend_row
from tollgate.errors import UpstreamError
from tollgate.store.memory import MemoryStore
from tollgate.store.records import SpendRow


def _spilled_lines(folder: Path) -> int:
    return sum(len(path.read_bytes().splitlines()) for path in folder.glob("*.jsonl"))


class FlakyStore(MemoryStore):
    """A memory store whose writes fail while ``down`` (a database that went away)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    async def record_spend(self, rows: Sequence[SpendRow]) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError("database unreachable")
        await super().record_spend(rows)

    async def spend_logs(
        self, filters: Mapping[str, str] | None = None, *, start: datetime | None = None,
        end: datetime | None = None, limit: int = 100_000, offset: int = 0,
    ) -> list[SpendRow]:
        return await super().spend_logs(filters, start=start, end=end, limit=limit, offset=offset)


def test_spend_row_fields() -> None:
    row = spend_row(attempted(first_token_at=1_700_000_000.2, stream=True), Decimal("0.000123"))
    assert row.request_id == "r1"
    assert row.api_key == "hash1" and row.key_alias == "alias1"
    assert (row.user_id, row.team_id) == ("u1", "t1")
    assert (row.model_group, row.requested_model, row.provider_model) == ("gpt", "gpt", "fake/m1")
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (10, 5, 15)
    assert row.spend == Decimal("0.000123")
    assert row.tags == ("c-tag", "m-tag")
    assert row.metadata == {"app": "x"}
    assert row.client_format == "openai" and row.stream
    assert row.completion_start_at == datetime.fromtimestamp(1_700_000_000.2, UTC)
    assert row.messages is None
    assert spend_row(attempted(), Decimal(0), store_prompts=True).messages == [
        {"role": "user", "content": "hello there"}
    ]
    failed = spend_row(attempted(usage=None, error=UpstreamError("boom", provider="fake")), Decimal(0))
    assert (failed.status_code, failed.error_class, failed.prompt_tokens) == (502, "UpstreamError", 0)
    assert decode(encode(row)) == row


async def test_batches_by_size_and_interval(tmp_path: Path) -> None:
    store = FlakyStore()
    log = SpendLog(store, tmp_path, interval=0.2, batch_size=3)
    await log.start()
    for n in range(3):
        log(attempted(f"r{n}"), Decimal("0.5"))
    await until(lambda: store.calls == 1, what="the third row woke the writer")
    assert len(await store.spend_logs()) == 3  # one batch of 3
    log(attempted("r3"), Decimal("0.5"))
    await until(lambda: store.calls == 2, what="the interval flushed the partial batch")
    assert len(await store.spend_logs()) == 4
    await log.stop()
    assert list(tmp_path.glob("*.jsonl")) == []


class ArrivalsDuringWrites(MemoryStore):
    """A store during whose first write two more requests finish (rows arrive mid-flush)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: SpendLog | None = None
        self.batches: list[int] = []

    async def record_spend(self, rows: Sequence[SpendRow]) -> None:
        self.batches.append(len(rows))
        if len(self.batches) == 1 and self.log is not None:
            for n in range(2):
                self.log(attempted(f"late{n}"), Decimal("0.5"))
        await super().record_spend(rows)


def _three_rows_and_two_arriving(tmp_path: Path) -> tuple[ArrivalsDuringWrites, SpendLog]:
    store = ArrivalsDuringWrites()
    log = SpendLog(store, tmp_path, interval=3600, batch_size=500)
    store.log = log
    for n in range(3):
        log(attempted(f"r{n}"), Decimal("0.5"))
    return store, log


async def test_a_periodic_flush_leaves_rows_that_arrive_meanwhile_to_the_next_one(tmp_path: Path) -> None:
    # Chasing them wrote one small batch after another under steady load (each batch costs the
    # same statements whatever its size).
    store, log = _three_rows_and_two_arriving(tmp_path)
    assert await log.flush(drain=False)
    assert store.batches == [3] and log.queued == 2
    assert await log.flush(drain=False)
    assert store.batches == [3, 2] and log.queued == 0
    assert len(await store.spend_logs()) == 5


async def test_a_draining_flush_writes_rows_that_arrive_meanwhile(tmp_path: Path) -> None:
    store, log = _three_rows_and_two_arriving(tmp_path)
    assert await log.flush()
    assert store.batches == [3, 2] and log.queued == 0


async def test_stop_flushes_everything(tmp_path: Path) -> None:
    store = FlakyStore()
    log = SpendLog(store, tmp_path, interval=3600, batch_size=1000)
    await log.start()
    for n in range(25):
        log(attempted(f"r{n}"), Decimal("0.01"))
    await log.stop()
    rows = await store.spend_logs()
    assert len(rows) == 25 and sum(r.spend for r in rows) == Decimal("0.25")


async def test_spill_file_replayed_by_next_process(tmp_path: Path) -> None:
    log = SpendLog(MemoryStore(), tmp_path, interval=3600, batch_size=1000)
    await log.start()
    for n in range(7):
        log(attempted(f"r{n}"), Decimal("0.01"))
    await until(lambda: _spilled_lines(tmp_path) == 7, what="the rows in the spill file")
    assert len(list(tmp_path.glob("*.jsonl"))) == 1
    # Simulate a crash: abandon the writer without stop (tasks cancelled, lock released).
    for task in log._tasks:
        task.cancel()
    assert log._spill is not None
    import os

    os.close(log._spill._lock_fd)
    fresh = MemoryStore()
    await fresh.record_spend([spend_row(attempted("r0"), Decimal("0.01"))])  # r0 already landed
    again = SpendLog(fresh, tmp_path, interval=3600, batch_size=2)
    await again.start()

    async def replayed() -> bool:
        return len(await fresh.spend_logs()) == 7

    await until(replayed, what="the spill file replayed")
    rows = await fresh.spend_logs()
    assert sorted(r.request_id for r in rows) == [f"r{n}" for n in range(7)]
    await again.stop()
    assert list(tmp_path.glob("*.jsonl")) == []


async def test_database_down_queues_spills_and_drains(tmp_path: Path) -> None:
    store = FlakyStore()
    store.down = True
    log = SpendLog(store, tmp_path, interval=0.05, batch_size=2, max_queued=4)
    await log.start()
    for n in range(10):
        log(attempted(f"r{n}"), Decimal("0.1"))
    await until(lambda: store.calls >= 2 and _spilled_lines(tmp_path) == 10, what="rows spilled")
    assert log.queued == 4  # bounded; the other six are only in the spill file
    assert await store.spend_logs() == []
    store.down = False

    async def drained() -> bool:
        return len(await store.spend_logs()) == 10 and log.queued == 0

    await until(drained, what="the queue and the spill file drained")
    rows = await store.spend_logs()
    assert sorted(r.request_id for r in rows) == sorted(f"r{n}" for n in range(10))
    assert log.queued == 0
    log(attempted("r10"), Decimal("0.1"))
    await log.stop()
    assert len(await store.spend_logs()) == 11
    assert list(tmp_path.glob("*.jsonl")) == []


async def test_stop_with_database_down_keeps_rows_for_next_start(tmp_path: Path) -> None:
    store = FlakyStore()
    store.down = True
    log = SpendLog(store, tmp_path, interval=3600)
    await log.start()
    log(attempted("a"), Decimal("1"))
    await log.stop()
    store.down = False
    again = SpendLog(store, tmp_path, interval=3600)
    await again.start()
    await again.stop()
    assert [r.request_id for r in await store.spend_logs()] == ["a"]


def test_retention_cutoff() -> None:
    now = datetime(2025, 3, 31, tzinfo=UTC)
    assert retention_cutoff("30d", now) == datetime(2025, 3, 1, tzinfo=UTC)
