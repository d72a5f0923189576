"""The cost of handing one finished request to the spend log (``SpendLog.__call__``), which runs
on the request path: it must only enqueue. Prints microseconds per call; the number was a test
assertion (< 100 µs) until wall-clock checks left the test suite.

    .venv/bin/python bench/sink_cost.py [calls]
"""

from __future__ import annotations

import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "src")]

from tests.accounting.helpers import attempted  # noqa: E402
from tollgate.accounting.spend import SpendLog  # noqa: E402
from tollgate.store.memory import MemoryStore  # noqa: E402


def main(calls: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        log = SpendLog(MemoryStore(), Path(folder), batch_size=10**9, max_queued=10**9)
        item = attempted()
        start = time.perf_counter()
        for _ in range(calls):
            log(item, Decimal("0.001"))
        per_call = (time.perf_counter() - start) / calls
    print(f"SpendLog.__call__: {per_call * 1e6:.1f} µs per call over {calls} calls (budget: 100 µs)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
