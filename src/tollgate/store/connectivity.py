"""What a failed database call means: the database cannot be used right now (down, unreachable,
wrong credentials, missing, out of connections, too slow) or something else (left to propagate).

``unavailable_reason`` answers with a short reason for the first kind and ``None`` for the second;
the SQL store turns the first into ``errors.StoreUnavailable`` (503 with retry-after at run time,
one line and exit 2 at start-up). ``masked`` shows a database URL with its password hidden, for
messages that name the database.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# asyncpg's exception classes, by name, so this module does not import the driver: the connection
# classes (server gone, refusing, out of slots) and the login ones (role, password, database).
_ASYNCPG_UNAVAILABLE = frozenset(
    {
        "PostgresConnectionError",
        "ConnectionDoesNotExistError",
        "ConnectionFailureError",
        "ConnectionRejectionError",
        "CannotConnectNowError",
        "TooManyConnectionsError",
        "InvalidAuthorizationSpecificationError",
        "InvalidPasswordError",
        "InvalidCatalogNameError",
        "AdminShutdownError",
        "CrashShutdownError",
    }
)
# SQLite's ways of saying the file cannot be used now.
_SQLITE_UNAVAILABLE = ("unable to open database file", "database is locked", "disk i/o error")


def masked(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    if "://" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("://", 1)[0] + "://…"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        context = None if current.__suppress_context__ else current.__context__
        current = current.__cause__ or context


def unavailable_reason(exc: BaseException) -> str | None:
    """A short reason when ``exc`` means the database cannot be used now, else ``None``."""
    for cause in _chain(exc):
        reason = _reason(cause)
        if reason is not None:
            return reason
    return None


def _reason(exc: BaseException) -> str | None:
    if isinstance(exc, socket.gaierror):
        return f"host not found ({exc.strerror or exc})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, PoolTimeout):
        return "no free connection in the pool"
    if isinstance(exc, OSError):
        return str(exc.strerror or exc).lower()
    if type(exc).__module__.startswith("asyncpg") and type(exc).__name__ in _ASYNCPG_UNAVAILABLE:
        return str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.OperationalError) and str(exc).lower().startswith(_SQLITE_UNAVAILABLE):
        return str(exc)
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return "connection lost"
    return None
