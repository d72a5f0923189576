"""Alembic environment: runs on the connection ``store.schema.migrate`` hands over.

No ``alembic.ini`` is needed. Run by hand with ``alembic -x url=sqlite:///tollgate.db upgrade head``
(``-c`` pointing at any ini whose ``script_location`` is this directory) and it opens its own engine.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    from tollgate.store.sql_engine import make_engine

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("pass the database with -x url=...")
    asyncio.run(_run_with_own_engine(url))
