"""``tollgate rollups rebuild``: recompute the spend rollups from the spend log.

The gateway keeps the rollups up to date as it writes spend rows, and the migration that created
them filled them from the rows already logged. Rows written into the spend table some other way
(a bulk load, a restore of the table alone) are not in them until this runs. It takes the
database ``serve`` would use (``--config``, else ``DATABASE_URL``) and runs in one transaction:
on PostgreSQL, spend writers wait for it (it locks the rollup tables), then carry on.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from tollgate.config.environment import read_environment


def cmd_rollups_rebuild(args: argparse.Namespace) -> int:
    from tollgate.cli import _load
    from tollgate.store import database_url
    from tollgate.store.connectivity import masked
    from tollgate.store.sql import SqlStore

    url = database_url(_load(args.config), read_environment())
    if url == "memory":
        print("database_url is 'memory': no rollups to rebuild")
        return 0

    async def run() -> int:
        store = SqlStore(url, pool_size=1)
        try:
            return await store.rebuild_rollups()
        finally:
            await store.close()

    started = time.perf_counter()
    rows = asyncio.run(run())
    print(f"rebuilt the spend rollups of {masked(url)}: {rows} rows in {time.perf_counter() - started:.1f} s")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rollups = subparsers.add_parser("rollups", help="the spend rollups the spend reports read")
    commands = rollups.add_subparsers(dest="rollups_command", required=True)
    rebuild = commands.add_parser("rebuild", help="recompute the spend rollups from the spend log")
    rebuild.add_argument("--config")
    rebuild.set_defaults(func=cmd_rollups_rebuild)
