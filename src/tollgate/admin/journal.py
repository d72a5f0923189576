"""One admin write = one store transaction with its audit entry (API and CLI alike).

``Journal.write(actor, action)`` opens the transaction and yields a ``Write``: the service does
its reads and writes through ``write.tx``, names the target and its state before the change
(``write.before(target, record)``) and the result (``write.after(view)``). The audit entry is
inserted in the same transaction when the block ends without an error, so a write and its entry
commit together or not at all, and the "before" is read under the write's own transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tollgate.admin.access import Clock
from tollgate.admin.audit import entry, mask, safe_id
from tollgate.auth.principal import Principal
from tollgate.store import Store, StoreTx


class Write:
    def __init__(self, tx: StoreTx) -> None:
        self.tx = tx
        self.target: str | None = None
        self.previous: Any = None
        self.result: Any = None

    def before(self, target: str | None, record: Any = None) -> None:
        """The written object's id (a plaintext key is stored as its hash) and its prior state."""
        self.target = safe_id(target) if target is not None else None
        self.previous = None if record is None else mask(record)

    def after(self, view: Any, target: str | None = None) -> None:
        self.result = view
        if target is not None and self.target is None:
            self.target = safe_id(target)


class Journal:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    @asynccontextmanager
    async def write(self, actor: Principal, action: str) -> AsyncIterator[Write]:
        async with self._store.transaction() as tx:
            write = Write(tx)
            yield write
            record = entry(actor, action, write.target, write.previous, write.result, 200, self._clock())
            await tx.audit.insert(record)
