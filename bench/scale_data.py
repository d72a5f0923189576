"""Synthetic tenants and spend rows for ``spend_scale.py``, written with COPY (asyncpg's binary
``copy_records_to_table``): who belongs to whom (``Shape``), the principal tables, and the spend
table loaded with its indexes dropped and rebuilt from their catalogue definitions."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from common import log

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
