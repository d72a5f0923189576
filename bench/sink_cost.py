"""The gateway CPU one finished request costs the spend log, on the request path and in the writer.

1. Request path: ``SpendLog.__call__`` (builds the row, encodes its spill line, enqueues), CPU
   time over ``--calls`` calls into a queue that never flushes.
2. Writer: ``--rows`` rows (distinct request ids, 1,000 keys, 5 models, a few tags) handed to a
   started ``SpendLog`` on a fresh PostgreSQL database (tollgate's migrations), flushed in batches
   of ``--batch`` as the writer does: the row existence check, the rows sent with asyncpg's binary
   COPY, the rollup upserts (the database sums the batch) and the principals'
   spend, plus the spill file's bookkeeping. Reported as this process's CPU time (user + system,
   ``time.process_time``) per row — the gateway's share (PostgreSQL's own work is not in it).

    .venv/bin/python bench/sink_cost.py [--calls 20000] [--rows 20000] [--batch 500]

The target (issue 17): request path + writer ≤ 50 µs per request.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "src")]

from tests.accounting.helpers import attempted  # noqa: E402
from tollgate.accounting.spend import SpendLog  # noqa: E402
from tollgate.call import Attempted  # noqa: E402
from tollgate.store.memory import MemoryStore  # noqa: E402

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


def request_path(calls: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        log = SpendLog(MemoryStore(), Path(folder), batch_size=10**9, max_queued=10**9)
        item = attempted()
        start = time.process_time()
        for _ in range(calls):
            log(item, Decimal("0.001"))
        return (time.process_time() - start) / calls


def _items(rows: int) -> list[Attempted]:
    base = attempted()
    out = []
    for n in range(rows):
        principal = replace(base.call.principal, key_hash=f"key-{n % 1000}", user_id=f"user-{n % 200}",
                            team_id=f"team-{n % 50}")
        call = replace(base.call, principal=principal, request_id=f"sink-{n}")
        out.append(replace(base, call=call, model_group=f"model-{n % 5}", started=1_700_000_000.0 + n))
    return out


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_SERVER}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def writer(rows: int, batch: int) -> tuple[float, float]:
    """(gateway CPU seconds per row in the writer, wall seconds per row)."""
    from tollgate.store import open_store
    from tollgate.store.schema import migrate

    name = f"bench_sink_{uuid.uuid4().hex[:10]}"
    await _pg(f'CREATE DATABASE "{name}"')
    try:
        url = f"{PG_SERVER}/{name}"
        await migrate(url)
        store = open_store(url, pool_size=2)
        items = _items(rows)
        with tempfile.TemporaryDirectory() as folder:
            log = SpendLog(store, Path(folder), batch_size=batch, max_queued=10**9, interval=3600)
            await log.start()
            await log.flush()  # connections opened, statements prepared
            enqueue = 0.0
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for i in range(0, rows, batch):
                t = time.process_time()
                for item in items[i : i + batch]:
                    log(item, Decimal("0.0012"))
                enqueue += time.process_time() - t
                await log.flush()
            cpu, wall = time.process_time() - cpu0 - enqueue, time.perf_counter() - wall0
            await log.stop()
        await store.close()
        return cpu / rows, wall / rows
    finally:
        await _pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    path = request_path(args.calls)
    print(f"request path (SpendLog.__call__): {path * 1e6:.1f} µs per request over {args.calls:,} calls")
    cpu, wall = asyncio.run(writer(args.rows, args.batch))
    print(f"writer on PostgreSQL (batches of {args.batch}): {cpu * 1e6:.1f} µs gateway CPU per row, "
          f"{wall * 1e6:.1f} µs wall per row over {args.rows:,} rows")
    total = path + cpu
    print(f"request path + writer: {total * 1e6:.1f} µs per request (target ≤ 50 µs)")


if __name__ == "__main__":
    main()
