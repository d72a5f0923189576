"""In-memory store: the same protocols as the SQL store, kept for the process lifetime.

Used when no database is configured and in tests. A transaction holds one lock and restores a
snapshot of every table if its body raises, which gives the all-or-nothing behaviour of SQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Generic, TypeVar

from tollgate.errors import Conflict, NotFound
from tollgate.store import AUDIT_FILTERS, GROUP_COLUMNS, SPEND_FILTERS, Search, StoreTx
from tollgate.store.aggregate import AGGREGATED, Aggregator
from tollgate.store.records import (
    AuditEntry,
    EntityPolicy,
    KeyChain,
    Membership,
    Organization,
    SpendGroup,
    SpendQuery,
    SpendRow,
    StoredDeployment,
    Team,
    UsagePlan,
    User,
    VirtualKey,
)

R = TypeVar("R")
_ENTITY_TABLES = {"key": "keys", "user": "users", "team": "teams", "org": "orgs"}
_SPEND_COLUMNS = {"key": "api_key", "user": "user_id", "team": "team_id", "org": "org_id"}
Getter = Callable[[R], object]


class MemoryTable(Generic[R]):
    def __init__(
        self,
        kind: str,
        id_of: Callable[[R], str],
        fields: Mapping[str, Callable[[R], object]],
        unique: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        self.rows: dict[str, R] = {}
        self._id_of = id_of
        self._fields = fields
        self._unique = unique

    async def get(self, record_id: str) -> R | None:
        return self.rows.get(record_id)

    async def insert(self, record: R) -> None:
        record_id = self._id_of(record)
        if record_id in self.rows:
            raise Conflict(f"{self.kind} '{record_id}' already exists")
        self._check_unique(record, record_id)
        self.rows[record_id] = record

    async def replace(self, record: R) -> None:
        record_id = self._id_of(record)
        if record_id not in self.rows:
            raise NotFound(f"{self.kind} '{record_id}' not found")
        self._check_unique(record, record_id)
        self.rows[record_id] = record

    async def delete(self, record_ids: Sequence[str]) -> list[str]:
        return [rid for rid in dict.fromkeys(record_ids) if self.rows.pop(rid, None) is not None]

    async def find(
        self, filters: Mapping[str, str] | None = None, *, offset: int = 0, limit: int | None = None,
        search: Search | None = None,
    ) -> list[R]:
        matches = [row for row in self.rows.values()
                   if self._matches(row, filters or {}) and self._found(row, search)]
        end = None if limit is None else offset + limit
        return matches[offset:end]

    async def count(self, filters: Mapping[str, str] | None = None, *, search: Search | None = None) -> int:
        return len(await self.find(filters, search=search))

    def _found(self, row: R, search: Search | None) -> bool:
        if search is None or not search[1]:
            return True
        names, text = search
        getters = [self._id_of if n == "id" else self._fields.get(n) for n in names]
        if None in getters:
            raise ValueError(f"{self.kind}: unknown search field in {names!r}")
        return any(text.lower() in str(g(row) or "").lower() for g in getters if g is not None)

    def _matches(self, row: R, filters: Mapping[str, str]) -> bool:
        for name, value in filters.items():
            getter = self._fields.get(name)
            if getter is None:
                raise ValueError(f"{self.kind}: unknown filter {name!r}")
            if getter(row) != value:
                return False
        return True

    def _check_unique(self, record: R, record_id: str) -> None:
        for name in self._unique:
            value = self._fields[name](record)
            if value is None:
                continue
            for other_id, other in self.rows.items():
                if other_id != record_id and self._fields[name](other) == value:
                    raise Conflict(f"{self.kind} with {name} '{value}' already exists")


def _getter(name: str) -> Callable[[AuditEntry], object]:
    return lambda entry: getattr(entry, name)


class _Tables:
    def __init__(self) -> None:
        self._orgs = MemoryTable[Organization]("organization", lambda r: r.id, {"alias": lambda r: r.alias})
        self._teams = MemoryTable[Team](
            "team", lambda r: r.id, {"org_id": lambda r: r.org_id, "alias": lambda r: r.alias}
        )
        self._users = MemoryTable[User](
            "user",
            lambda r: r.id,
            {"email": lambda r: r.email, "org_id": lambda r: r.org_id, "role": lambda r: r.role},
        )
        self._memberships = MemoryTable[Membership](
            "team membership",
            lambda r: r.id,
            {"team_id": lambda r: r.team_id, "user_id": lambda r: r.user_id},
        )
        self._keys = MemoryTable[VirtualKey](
            "key",
            lambda r: r.token,
            {
                "user_id": lambda r: r.user_id,
                "team_id": lambda r: r.team_id,
                "org_id": lambda r: r.org_id,
                "key_alias": lambda r: r.key_alias,
            },
            unique=("key_alias",),
        )
        self._deployments = MemoryTable[StoredDeployment](
            "model", lambda r: r.id, {"model_name": lambda r: r.model_name}
        )
        self._plans = MemoryTable[UsagePlan](
            "usage plan",
            lambda r: r.id,
            {"entity_type": lambda r: r.entity_type, "entity_id": lambda r: r.entity_id},
        )
        self.audit = MemoryTable[AuditEntry](
            "audit entry", lambda r: r.id, {name: _getter(name) for name in AUDIT_FILTERS}
        )
        self.tx = StoreTx(
            orgs=self._orgs,
            teams=self._teams,
            users=self._users,
            memberships=self._memberships,
            keys=self._keys,
            deployments=self._deployments,
            usage_plans=self._plans,
            audit=self.audit,
        )

    def all(self) -> tuple[MemoryTable[object], ...]:
        return (
            self._orgs, self._teams, self._users, self._memberships,  # type: ignore[return-value]
            self._keys, self._deployments, self._plans, self.audit,
        )


class MemoryStore:
    def __init__(self) -> None:
        self._tables = _Tables()
        self._lock = asyncio.Lock()
        self._spend: list[SpendRow] = []
        self._logged: set[str] = set()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTx]:
        async with self._lock:
            snapshot = [dict(table.rows) for table in self._tables.all()]
            try:
                yield self._tables.tx
            except BaseException:
                for table, rows in zip(self._tables.all(), snapshot, strict=True):
                    table.rows = rows
                raise

    async def record_spend(self, rows: Sequence[SpendRow]) -> None:
        async with self.transaction() as tx:
            for row in rows:
                if row.request_id in self._logged:
                    continue
                self._logged.add(row.request_id)
                self._spend.append(row)
                await _add_spend(tx, row)

    def _matching(
        self, filters: Mapping[str, str] | None, start: datetime | None, end: datetime | None
    ) -> list[SpendRow]:
        for name in filters or {}:
            if name not in SPEND_FILTERS:
                raise ValueError(f"spend logs: unknown filter {name!r}")
        out = [
            row
            for row in self._spend
            if (start is None or row.started_at >= start)
            and (end is None or row.started_at < end)
            and all(_spend_match(row, name, value) for name, value in (filters or {}).items())
        ]
        out.sort(key=lambda r: r.request_id)
        out.sort(key=lambda r: r.started_at, reverse=True)
        return out

    async def spend_logs(
        self,
        filters: Mapping[str, str] | None = None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        after: tuple[datetime, str] | None = None,
    ) -> list[SpendRow]:
        rows = self._matching(filters, start, end)
        if after is not None:
            at, request_id = after
            rows = [
                r for r in rows if r.started_at < at or (r.started_at == at and r.request_id > request_id)
            ]
        return rows[offset : offset + limit]

    async def spend_groups(
        self,
        group_by: str | None,
        *,
        by_day: bool = False,
        filters: Mapping[str, str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[SpendGroup]:
        column = GROUP_COLUMNS[group_by] if group_by else None
        aggregator = Aggregator(column, by_day)
        for row in self._matching(filters, start, end):
            aggregator.add({name: getattr(row, name) for name in AGGREGATED + ((column,) if column else ())})
        return aggregator.groups

    async def purge_spend_logs(self, before: datetime) -> int:
        kept = [row for row in self._spend if row.started_at >= before]
        purged = len(self._spend) - len(kept)
        self._spend = kept
        self._logged = {row.request_id for row in kept}
        return purged

    async def spend_of_record(self, queries: Sequence[SpendQuery]) -> list[Decimal]:
        totals: list[Decimal] = []
        for query in queries:
            if query.start is None and query.kind in _ENTITY_TABLES:
                record = await getattr(self._tables.tx, _ENTITY_TABLES[query.kind]).get(query.entity_id)
                totals.append(record.policy.spend if record is not None else Decimal(0))
                continue
            column = _SPEND_COLUMNS.get(query.kind)
            if column is None and query.kind != "proxy":
                totals.append(Decimal(0))  # a JWT service is not named in the spend log
                continue
            totals.append(sum(
                (row.spend for row in self._spend
                 if (column is None or getattr(row, column) == query.entity_id)
                 and (query.start is None or row.started_at >= query.start)
                 and (query.end is None or row.started_at < query.end)),
                Decimal(0),
            ))
        return totals

    async def key_chain(self, token: str) -> KeyChain | None:
        tx = self._tables.tx
        key = await tx.keys.get(token)
        if key is None:
            return None
        user = await tx.users.get(key.user_id) if key.user_id else None
        team = await tx.teams.get(key.team_id) if key.team_id else None
        org_id = key.org_id or (team.org_id if team else None) or (user.org_id if user else None)
        org = await tx.orgs.get(org_id) if org_id else None
        return KeyChain(key, user, team, org)

    async def audit_logs(
        self,
        filters: Mapping[str, str] | None = None,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        for name in filters or {}:
            if name not in AUDIT_FILTERS:
                raise ValueError(f"audit logs: unknown filter {name!r}")
        out = [
            e
            for e in self._tables.audit.rows.values()
            if (start is None or e.created_at >= start)
            and (end is None or e.created_at < end)
            and all(getattr(e, name) == value for name, value in (filters or {}).items())
        ]
        out.sort(key=lambda e: e.id)
        out.sort(key=lambda e: e.created_at, reverse=True)
        return out[offset : offset + limit]

    async def close(self) -> None:
        return None


async def _add_spend(tx: StoreTx, row: SpendRow) -> None:
    if not row.spend:
        return
    amount = row.spend
    if row.api_key and (key := await tx.keys.get(row.api_key)) is not None:
        await tx.keys.replace(replace(key, policy=_plus(key.policy, amount)))
    if row.user_id and (user := await tx.users.get(row.user_id)) is not None:
        await tx.users.replace(replace(user, policy=_plus(user.policy, amount)))
    if row.team_id and (team := await tx.teams.get(row.team_id)) is not None:
        await tx.teams.replace(replace(team, policy=_plus(team.policy, amount)))
    if row.org_id and (org := await tx.orgs.get(row.org_id)) is not None:
        await tx.orgs.replace(replace(org, policy=_plus(org.policy, amount)))


def _plus(policy: EntityPolicy, amount: Decimal) -> EntityPolicy:
    return replace(policy, spend=policy.spend + amount)


def _spend_match(row: SpendRow, name: str, value: str) -> bool:
    if name == "status":
        return (row.status_code >= 400) == (value == "failure")
    return bool(getattr(row, name) == value)
