"""Data scale (issue 17): tollgate's spend APIs and principal cache against a big PostgreSQL.

1. A fresh database ``bench_scale_<random>`` gets tollgate's schema from its own migrations
   (``tollgate migrate`` with DATABASE_URL), then, with COPY (asyncpg's binary
   ``copy_records_to_table``):
     * ``--orgs`` organisations, ``--teams`` teams, ``--users`` users (each a member of one team),
       ``--keys`` virtual keys (key i belongs to user i mod users and that user's team), every one
       with rpm/tpm/parallel limits and a daily and a monthly budget far out of reach;
     * ``--rows`` spend rows (default 10,000,000) spread uniformly over the last ``--days`` days,
       over the keys, ``--models`` models and a few tag sets, priced per token, 2 % failures.
   The spend table's indexes are dropped for the load and rebuilt after it (the definitions are
   read from the catalogue first, so the schema ends as the migrations made it), the principals'
   ``spend`` columns are set to their rows' sums, and the tables are ANALYZEd. ``--post-load CMD``
   runs a shell command with DATABASE_URL set afterwards (e.g. a rollup rebuild, once tollgate has
   rollups: rows written straight into the spend table bypass whatever the gateway maintains).
2. ``tollgate serve`` on that database (one worker, the canned upstream as its model) answers each
   spend API and usage query of ``scale_probes.QUERIES`` over HTTP, ``--repeat`` times: the first
   (cold) time and the median are reported, with status and answer size.
3. The principal cache: the first chat completion of ``--cold-samples`` never-used keys against a
   second request of the same key, and the SQL each cold key issued (the database is set to
   ``log_min_duration_statement = 0`` for that server only; statements read back from the server
   log); then RSS of a fresh worker after authenticating 0 … ``--warm-keys`` distinct keys
   (GET /v1/models: authentication only), per cached principal.

    .venv/bin/python bench/spend_scale.py                       # 10M rows: ~10-15 min on 2 cores
    .venv/bin/python bench/spend_scale.py --rows 2000000 --repeat 3
    .venv/bin/python bench/spend_scale.py --rows 0 --keys 100000 --users 10000 --teams 1000
    .venv/bin/python bench/spend_scale.py --keep                 # keep the database, print its name
    .venv/bin/python bench/spend_scale.py --database bench_scale_x --skip-load   # rerun the probes

The report goes to stdout and ``bench/results/spend-scale.md``. The database is dropped at the
end unless ``--keep`` (or ``--database``) is given.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pg
from common import MASTER_KEY, RESULTS, log

TABLE = "tollgate_spend_logs"
CHUNK = 250_000
TAG_SETS = ('["env:prod","app:chat"]', '["env:prod","app:search"]', '["env:dev"]', "[]", '["batch"]')
POLICY = {
    "rpm": 100_000_000,
    "tpm": 2_000_000_000,
    "max_parallel": 100_000,
}


def budgets_json(now: datetime) -> str:
    day = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    month = (now.replace(day=1) + timedelta(days=32)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    return (
        f'[{{"max_budget":"100000","duration":"1d","reset_at":"{day.isoformat()}"}},'
        f'{{"max_budget":"1000000","duration":"1mo","reset_at":"{month.isoformat()}"}}]'
    )


def key_plaintext(i: int) -> str:
    return f"sk-scale-{i:08d}"


def token(i: int) -> str:
    return hashlib.sha256(key_plaintext(i).encode()).hexdigest()


class Shape:
    """Who belongs to whom: team → org, user → team, key → user (and its team and org)."""

    def __init__(self, orgs: int, teams: int, users: int, keys: int, models: int) -> None:
        self.orgs, self.teams, self.users, self.keys, self.models = orgs, teams, users, keys, models

    def org_id(self, o: int) -> str:
        return f"org-{o:05d}"

    def team_id(self, t: int) -> str:
        return f"team-{t:05d}"

    def user_id(self, u: int) -> str:
        return f"user-{u:06d}"

    def team_of_user(self, u: int) -> int:
        return u % self.teams

    def org_of_team(self, t: int) -> int:
        return t % self.orgs

    def key_owner(self, k: int) -> tuple[str, str, str]:
        u = k % self.users
        t = self.team_of_user(u)
        return self.user_id(u), self.team_id(t), self.org_id(self.org_of_team(t))


def policy_values(now: datetime, budgets: str) -> dict[str, Any]:
    return {
        "models": "[]",
        "rpm": POLICY["rpm"],
        "tpm": POLICY["tpm"],
        "input_tpm": None,
        "output_tpm": None,
        "max_parallel": POLICY["max_parallel"],
        "model_limits": "{}",
        "budgets": budgets,
        "max_budget": None,
        "budget_duration": None,
        "budget_reset_at": None,
        "soft_budget": None,
        "spend": Decimal(0),
        "metadata": "{}",
        "tags": "[]",
        "blocked": False,
        "created_at": now,
        "updated_at": now,
    }


async def copy(
    conn: Any, table: str, rows: list[dict[str, Any]] | Iterator[dict[str, Any]], columns: list[str]
) -> int:
    records = [tuple(r[c] for c in columns) for r in rows]
    await conn.copy_records_to_table(table, records=records, columns=columns)
    return len(records)


async def load_principals(conn: Any, shape: Shape, now: datetime) -> None:
    policy = policy_values(now, budgets_json(now))
    cols = list(policy)
    t0 = time.perf_counter()
    orgs = [{"id": shape.org_id(o), "alias": f"org {o}", **policy} for o in range(shape.orgs)]
    await copy(conn, "tollgate_organizations", orgs, ["id", "alias", *cols])
    teams = [
        {"id": shape.team_id(t), "alias": f"team {t}", "org_id": shape.org_id(shape.org_of_team(t)), **policy}
        for t in range(shape.teams)
    ]
    await copy(conn, "tollgate_teams", teams, ["id", "alias", "org_id", *cols])
    users = []
    members = []
    for u in range(shape.users):
        t = shape.team_of_user(u)
        users.append(
            {
                "id": shape.user_id(u),
                "email": f"user{u}@scale.example",
                "alias": f"user {u}",
                "role": "internal_user",
                "org_id": shape.org_id(shape.org_of_team(t)),
                **policy,
            }
        )
        members.append({"team_id": shape.team_id(t), "user_id": shape.user_id(u), "role": "user"})
    await copy(conn, "tollgate_users", users, ["id", "email", "alias", "role", "org_id", *cols])
    await copy(conn, "tollgate_team_memberships", members, ["team_id", "user_id", "role"])
    key_cols = [
        "token",
        "key_name",
        "key_alias",
        "user_id",
        "team_id",
        "org_id",
        "expires",
        "created_by",
        *cols,
    ]
    for start in range(0, shape.keys, CHUNK):
        batch = []
        for k in range(start, min(start + CHUNK, shape.keys)):
            user, team, org = shape.key_owner(k)
            plain = key_plaintext(k)
            batch.append(
                {
                    "token": token(k),
                    "key_name": f"sk-...{plain[-4:]}",
                    "key_alias": f"scale-key-{k}",
                    "user_id": user,
                    "team_id": team,
                    "org_id": org,
                    "expires": None,
                    "created_by": "bench",
                    **policy,
                }
            )
        await copy(conn, "tollgate_verification_tokens", batch, key_cols)
    log(
        f"principals: {shape.orgs} orgs, {shape.teams} teams, {shape.users} users, {shape.keys} keys "
        f"in {time.perf_counter() - t0:.1f}s"
    )


SPEND_COLS = [
    "request_id",
    "api_key",
    "key_alias",
    "user_id",
    "team_id",
    "org_id",
    "model_group",
    "deployment_id",
    "provider_model",
    "started_at",
    "ended_at",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "spend",
    "status_code",
    "error_class",
    "tags",
    "metadata",
    "client_format",
    "requested_model",
    "attempts",
    "stream",
    "completion_start_at",
]


def key_rows(shape: Shape) -> list[tuple[str, str, str, str, str]]:
    """(token, alias, user, team, org) of every key, for the spend rows."""
    return [(token(k), f"scale-key-{k}", *shape.key_owner(k)) for k in range(shape.keys)]


def spend_records(
    start: int, count: int, shape: Shape, keys: list[tuple[str, str, str, str, str]], now: datetime, days: int
) -> list[tuple[Any, ...]]:
    """``count`` rows from row number ``start``; deterministic (seeded by ``start``)."""
    rnd = random.Random(17 + start)
    models = [(f"model-{m}", f"dep-{m}", f"openai/model-{m}") for m in range(shape.models)]
    usage = []  # (prompt, completion, spend): Decimal arithmetic once, not per row
    for _ in range(256):
        p, c = rnd.randint(10, 4000), rnd.randint(5, 1500)
        usage.append((p, c, Decimal(p) * Decimal("0.000001") + Decimal(c) * Decimal("0.000002")))
    span = days * 86_400
    t_end = now.timestamp()
    out = []
    nk, nm, nu, nt = len(keys), len(models), len(usage), len(TAG_SETS)
    for i in range(start, start + count):
        token_, alias, user, team, org = keys[rnd.randrange(nk)]
        model, dep, provider = models[rnd.randrange(nm)]
        p, c, cost = usage[rnd.randrange(nu)]
        at = t_end - rnd.random() * span
        started = datetime.fromtimestamp(at, UTC)
        ended = datetime.fromtimestamp(at + 0.3 + rnd.random() * 3, UTC)
        failed = rnd.random() < 0.02
        stream = rnd.random() < 0.3
        out.append(
            (
                f"scale-{i:010d}",
                token_,
                alias,
                user,
                team,
                org,
                model,
                dep,
                provider,
                started,
                ended,
                p,
                0 if failed else c,
                0,
                0,
                Decimal(0) if failed else cost,
                429 if failed else 200,
                "RateLimitError" if failed else None,
                TAG_SETS[rnd.randrange(nt)],
                "{}",
                "openai",
                model,
                1,
                stream,
                started + timedelta(seconds=0.2) if stream else None,
            )
        )
    return out


async def spend_indexes(conn: Any) -> tuple[list[str], list[tuple[str, str]]]:
    """(CREATE INDEX statements, (constraint name, definition)) of the spend table."""
    rows = await conn.fetch(
        "SELECT indexdef FROM pg_indexes WHERE tablename = $1 AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass)",
        TABLE,
    )
    cons = await conn.fetch(
        "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint "
        "WHERE conrelid = $1::regclass AND contype IN ('p', 'u')",
        TABLE,
    )
    return [r["indexdef"] for r in rows], [(r["conname"], r["def"]) for r in cons]


async def load_spend(conn: Any, shape: Shape, rows: int, days: int, now: datetime) -> None:
    indexes, constraints = await spend_indexes(conn)
    for name, _ in constraints:
        await conn.execute(f"ALTER TABLE {TABLE} DROP CONSTRAINT {name}")
    for ddl in indexes:
        await conn.execute(f"DROP INDEX {ddl.split(' INDEX ', 1)[1].split(' ON ', 1)[0]}")
    t0 = time.perf_counter()
    done = 0
    keys = key_rows(shape)
    while done < rows:
        n = min(CHUNK, rows - done)
        records = spend_records(done, n, shape, keys, now, days)
        await conn.copy_records_to_table(TABLE, records=records, columns=SPEND_COLS)
        done += n
        rate = done / (time.perf_counter() - t0)
        log(f"spend rows: {done:,}/{rows:,} ({rate:,.0f} rows/s, ~{(rows - done) / rate:.0f}s left)")
    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    await conn.execute("SET maintenance_work_mem = '1GB'")
    for name, definition in constraints:
        await conn.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} {definition}")
    for ddl in indexes:
        await conn.execute(ddl)
    log(f"spend rows: COPY {load_s:.0f}s, indexes rebuilt in {time.perf_counter() - t1:.0f}s")


async def settle_entity_spend(conn: Any) -> None:
    """Each principal's ``spend`` = the sum of its rows, as the gateway would have kept it."""
    for table, key, column in (
        ("tollgate_verification_tokens", "token", "api_key"),
        ("tollgate_users", "id", "user_id"),
        ("tollgate_teams", "id", "team_id"),
        ("tollgate_organizations", "id", "org_id"),
    ):
        await conn.execute(
            f"UPDATE {table} e SET spend = s.total FROM (SELECT {column} AS id, sum(spend) AS total "
            f"FROM {TABLE} GROUP BY {column}) s WHERE e.{key} = s.id"
        )


async def load(url: str, args: argparse.Namespace, shape: Shape) -> dict[str, float]:
    import asyncpg

    now = datetime.now(UTC)
    conn = await asyncpg.connect(url)
    timings: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        await load_principals(conn, shape, now)
        timings["principals"] = time.perf_counter() - t0
        if args.rows:
            t0 = time.perf_counter()
            await load_spend(conn, shape, args.rows, args.days, now)
            timings["spend rows (COPY + indexes)"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            await settle_entity_spend(conn)
            timings["principal spend totals"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        await conn.execute("ANALYZE")
        timings["ANALYZE"] = time.perf_counter() - t0
        size = await conn.fetchval(f"SELECT pg_size_pretty(pg_total_relation_size('{TABLE}'))")
        log(f"spend table with indexes: {size}")
        timings["_size"] = 0.0
        args.table_size = size
    finally:
        await conn.close()
    return timings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000, help="spend rows to load (0: principals only)")
    ap.add_argument("--keys", type=int, default=1000)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--teams", type=int, default=50)
    ap.add_argument("--orgs", type=int, default=5)
    ap.add_argument("--models", type=int, default=5)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--repeat", type=int, default=5, help="timed calls per query (median reported)")
    ap.add_argument(
        "--cold-samples", type=int, default=20, help="never-used keys timed on their first request"
    )
    ap.add_argument("--warm-keys", type=int, default=None, help="keys authenticated for the RSS curve")
    ap.add_argument("--database", default=None, help="use this existing database (kept afterwards)")
    ap.add_argument("--skip-load", action="store_true", help="with --database: it is loaded already")
    ap.add_argument("--keep", action="store_true", help="keep the database")
    ap.add_argument(
        "--post-load", default=None, help="shell command run after the load, with DATABASE_URL set"
    )
    ap.add_argument("--skip-queries", action="store_true")
    ap.add_argument("--skip-principals", action="store_true", help="skip the cold-key and RSS measurements")
    ap.add_argument("--out", type=Path, default=RESULTS / "spend-scale.md")
    args = ap.parse_args(argv)
    from scale_probes import run_probes

    shape = Shape(args.orgs, args.teams, args.users, args.keys, args.models)
    cmd = [sys.executable, "-m", "tollgate"]
    if args.database:
        database, url = args.database, f"postgresql://{pg.PG_USER}@{pg.PG_HOST}:{pg.PG_PORT}/{args.database}"
    else:
        name = f"bench_scale_{os.urandom(4).hex()}"
        pg.psql(f"CREATE DATABASE {name}")
        database, url = name, f"postgresql://{pg.PG_USER}@{pg.PG_HOST}:{pg.PG_PORT}/{name}"
    keep = args.keep or bool(args.database)
    started = time.perf_counter()
    lines = [
        f"# Spend and principal data scale — `bench/spend_scale.py {shlex.join(argv or sys.argv[1:])}`",
        "",
    ]
    try:
        from servers import tollgate_env

        env = {**tollgate_env(True), "DATABASE_URL": url}
        timings: dict[str, float] = {}
        if not args.skip_load:
            t0 = time.perf_counter()
            # The embedded demo config names a SQLite file, which would win over DATABASE_URL.
            bare = Path(tempfile.mkdtemp(prefix="tollgate-scale-")) / "migrate.yaml"
            bare.write_text(json.dumps({"general_settings": {"master_key": MASTER_KEY}}))
            subprocess.run(
                [*cmd, "migrate", "--config", str(bare)],
                env=env,
                check=True,
                capture_output=True,
                timeout=300,
            )
            shutil.rmtree(bare.parent, ignore_errors=True)
            timings["tollgate migrate"] = time.perf_counter() - t0
            timings.update(asyncio.run(load(url, args, shape)))
            if args.post_load:
                t0 = time.perf_counter()
                subprocess.run(args.post_load, shell=True, env=env, check=True)
                timings["--post-load"] = time.perf_counter() - t0
        if args.skip_load:
            args.table_size = pg.psql(f"SELECT pg_size_pretty(pg_total_relation_size('{TABLE}'))", database)
        lines += [
            f"- load average at start: {os.getloadavg()} (2 cores; other work on the box slows every query)",
            f"- database: `{database}` ({'kept' if keep else 'dropped afterwards'}); spend table with "
            f"indexes: {getattr(args, 'table_size', '?')}",
            f"- shape: {args.rows:,} spend rows over {args.days} days; {args.keys:,} keys, "
            f"{args.users:,} users, {args.teams:,} teams, {args.orgs} orgs, {args.models} models",
            *(f"- load step {k}: {v:.1f} s" for k, v in timings.items() if not k.startswith("_")),
        ]
        lines += run_probes(args, shape, database, url, cmd)
    finally:
        if not keep:
            pg.drop_database(database)
    lines += ["", f"Wall time {time.perf_counter() - started:.0f} s; load average {os.getloadavg()}.", ""]
    report = "\n".join(lines)
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
