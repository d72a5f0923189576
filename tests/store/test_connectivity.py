"""Which database failures mean "cannot use the database now" (503 / exit 2), and URL masking."""

from __future__ import annotations

import socket
import sqlite3

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError

from tollgate.store.connectivity import masked, unavailable_reason


def _wrapped(cause: BaseException) -> DBAPIError:
    """How SQLAlchemy hands a driver error over: a DBAPIError whose cause is the driver's."""
    try:
        try:
            raise cause
        except BaseException as exc:
            raise DBAPIError("SELECT 1", None, exc) from exc
    except DBAPIError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
        (socket.gaierror(-2, "Name or service not known"), "host not found (Name or service not known)"),
        (TimeoutError(), "timed out"),
        (ConnectionResetError(104, "Connection reset by peer"), "connection reset by peer"),
        (
            _wrapped(asyncpg.InvalidPasswordError('password authentication failed for user "app"')),
            'password authentication failed for user "app"',
        ),
        (
            _wrapped(asyncpg.InvalidCatalogNameError('database "x" does not exist')),
            'database "x" does not exist',
        ),
        (_wrapped(asyncpg.TooManyConnectionsError("too many clients")), "too many clients"),
        (
            _wrapped(asyncpg.CannotConnectNowError("the database system is starting up")),
            "the database system is starting up",
        ),
        (_wrapped(asyncpg.ConnectionDoesNotExistError("connection was closed")), "connection was closed"),
        (_wrapped(sqlite3.OperationalError("unable to open database file")), "unable to open database file"),
        (_wrapped(sqlite3.OperationalError("database is locked")), "database is locked"),
    ],
)
def test_unavailable(exc: BaseException, reason: str) -> None:
    assert unavailable_reason(exc) == reason


@pytest.mark.parametrize(
    "exc",
    [
        _wrapped(asyncpg.UndefinedTableError('relation "x" does not exist')),
        _wrapped(sqlite3.OperationalError("no such table: x")),
        IntegrityError("INSERT", None, Exception("duplicate key")),
        ValueError("a bug"),
    ],
)
def test_other_failures_are_not_outages(exc: BaseException) -> None:
    assert unavailable_reason(exc) is None


def test_masked_hides_the_password_only() -> None:
    assert masked("postgresql://app:s3cret@db:5432/gw") == "postgresql://app:***@db:5432/gw"
    assert masked("postgresql://app@db/gw") == "postgresql://app@db/gw"
    assert masked("redis://:pw@cache:6379/0") == "redis://:***@cache:6379/0"
    assert masked("sqlite:///tollgate.db") == "sqlite:///tollgate.db"
    assert masked("/var/lib/tollgate.db") == "/var/lib/tollgate.db"
