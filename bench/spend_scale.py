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
   ``spend`` columns are set to their rows' sums, and the tables are ANALYZEd. Then the post-load
   step: by default ``tollgate rollups rebuild`` (rows written straight into the spend table bypass
   the rollups the gateway keeps as it logs), timed; ``--post-load CMD`` runs another shell command
   with DATABASE_URL set instead (``--post-load ''``: none).
2. ``tollgate serve`` on that database (one worker, the canned upstream as its model) answers each
   spend API and usage query of ``scale_probes.queries`` over HTTP, ``--repeat`` times: the first
   (cold) time and the median are reported, with status and answer size.
3. The principal cache (``scale_principals.py``): the first chat completion of ``--cold-samples``
   never-used keys against a second request of the same key, and the SQL each cold key issued
   (the database is set to ``log_min_duration_statement = 0`` while that server runs; statements
   read back from the server log, ``pg_statements.py``); then RSS of a fresh worker after
   authenticating 0 … ``--warm-keys`` distinct keys (GET /v1/models: authentication only), per
   cached principal.

    .venv/bin/python bench/spend_scale.py                       # 10M rows: ~4 min load + ~6 min queries here
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
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pg
from common import MASTER_KEY, RESULTS, log
from scale_data import TABLE, Shape, load_principals, load_spend, settle_entity_spend


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
        "--post-load",
        default=None,
        help="shell command run after the load, with DATABASE_URL set (default: tollgate rollups rebuild)",
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
            timings["tollgate migrate"] = time.perf_counter() - t0
            timings.update(asyncio.run(load(url, args, shape)))
            post_load = args.post_load
            if post_load is None:
                post_load = shlex.join([*cmd, "rollups", "rebuild", "--config", str(bare)])
            if post_load:
                t0 = time.perf_counter()
                subprocess.run(post_load, shell=True, env=env, check=True)
                name = "tollgate rollups rebuild" if args.post_load is None else "--post-load"
                timings[name] = time.perf_counter() - t0
            shutil.rmtree(bare.parent, ignore_errors=True)
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
