"""Throwaway PostgreSQL databases for the bench (``psql`` against 127.0.0.1:5432, user postgres)."""

from __future__ import annotations

import os
import subprocess

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
SPEND_TABLE = "tollgate_spend_logs"


def psql(sql: str, database: str = "postgres") -> str:
    argv = ["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_USER, "-d", database, "-tAXq", "-c", sql]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"psql {sql!r} failed: {res.stderr.strip()}")
    return res.stdout.strip()


def create_database() -> tuple[str, str]:
    """A fresh ``bench_<random>`` database: (name, URL)."""
    name = f"bench_{os.urandom(4).hex()}"
    psql(f"CREATE DATABASE {name}")
    return name, f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


def drop_database(name: str) -> None:
    psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def spend_figures(name: str) -> tuple[int, str]:
    """Spend rows and their summed spend (as PostgreSQL prints it)."""
    out = psql(f"SELECT count(*), coalesce(sum(spend), 0) FROM {SPEND_TABLE}", name)
    rows, total = out.split("|")
    return int(rows), total


def backend_pids(name: str) -> list[int]:
    """The server processes serving connections to database ``name`` (for their CPU time)."""
    out = psql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()")
    return [int(p) for p in out.split()]


def spend_rows(name: str) -> int:
    return int(psql(f"SELECT count(*) FROM {SPEND_TABLE}", name))


def spend_by_key(name: str) -> dict[str, int]:
    """Spend rows per ``api_key`` column (the key's hash; '' for rows without one)."""
    out = psql(f"SELECT coalesce(api_key, ''), count(*) FROM {SPEND_TABLE} GROUP BY 1", name)
    rows: dict[str, int] = {}
    for line in out.splitlines():
        key, _, count = line.rpartition("|")
        rows[key] = int(count)
    return rows
