"""Statements a server sends to PostgreSQL, with their durations: ``statement_log`` sets
``log_min_duration_statement = 0`` on one database (every session opened on it meanwhile logs each
statement), and the log slices written since an offset are parsed back (``entries``). Needs the
server log readable at ``PG_LOG`` (Debian's default; the bench runs as root)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pg

PG_LOG = Path("/var/log/postgresql/postgresql-15-main.log")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \w+ \[\d+\] \S*@(\S+) (\w+):\s+(.*)$")
CONTROL = re.compile(r"^(BEGIN|COMMIT|ROLLBACK)\b", re.I)
DURATION = re.compile(r"^duration: ([\d.]+) ms\s+(?:(parse|bind|execute) [^:]*|statement): (.*)$", re.S)


def log_slice(offset: int) -> tuple[str, int]:
    """The server log written since ``offset`` (and the new offset)."""
    end = PG_LOG.stat().st_size
    with PG_LOG.open("rb") as f:
        f.seek(offset)
        return f.read(end - offset).decode(errors="replace"), end


def entries(text: str, database: str) -> list[tuple[float, str, str]]:
    """(duration ms, phase, SQL) of ``database``'s statements in a slice of the server log."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if m:
            entries.append([m.group(1), m.group(2), m.group(3)])
        elif line.startswith("\t") and entries:
            entries[-1][2] += "\n" + line.strip()
    out = []
    for db, level, message in entries:
        if db != database or level != "LOG":
            continue
        d = DURATION.match(message)
        if d:
            out.append((float(d.group(1)), d.group(2) or "statement", " ".join(d.group(3).split())))
    return out


@contextlib.contextmanager
def statement_log(database: str) -> Iterator[None]:
    """Every session opened on ``database`` meanwhile logs each statement with its duration."""
    if PG_LOG.exists():
        pg.psql(f"ALTER DATABASE {database} SET log_min_duration_statement = 0")
    try:
        yield
    finally:
        pg.psql(f"ALTER DATABASE {database} RESET log_min_duration_statement")
