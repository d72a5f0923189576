"""The Usage page's series: the top groups by spend with their days, the rest summed as "N more",
the totals — read as per-group totals plus the shown groups' days (a dozen small reads), and the
same answer when a shown group is "(none)" (read from every group's days instead)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tollgate.store import Store, open_store
from tollgate.store.records import SpendRow
from tollgate.store.schema import migrate
from tollgate.ui.usage_series import series

START = datetime(2026, 4, 1, tzinfo=UTC)
END = START + timedelta(days=4)


def _rows() -> list[SpendRow]:
    rows = []
    for n in range(40):
        at = START + timedelta(hours=n * 2 + 1)
        key = f"k{n % 5}"
        team = None if n % 7 == 0 else f"t{n % 3}"
        spend = Decimal(n % 5 + 1) * Decimal("0.001") + Decimal(n) * Decimal("0.000001")
        rows.append(SpendRow(f"r{n}", at, at, api_key=key, team_id=team, spend=spend, prompt_tokens=n,
                             completion_tokens=1))
    return rows


Shown = list[tuple[str | None, float, list[float]]]


def _expected(rows: list[SpendRow], column: str, top: int) -> tuple[Shown, list[float] | None, float]:
    days = [(START + timedelta(days=d)).date().isoformat() for d in range(4)]
    daily: dict[str | None, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 4)
    for r in rows:
        daily[getattr(r, column)][days.index(r.started_at.date().isoformat())] += r.spend
    ranked = sorted(daily.items(), key=lambda item: (-sum(item[1]), item[0] or ""))
    shown = [(g, float(sum(d)), [float(v) for v in d]) for g, d in ranked[:top]]
    rest = ranked[top:]
    other = [float(sum(d[i] for _, d in rest)) for i in range(4)] if rest else None
    return shown, other, float(sum(r.spend for r in rows))


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return open_store("memory")
    url = f"sqlite:///{tmp_path}/usage.db"
    await migrate(url)
    return open_store(url)


@pytest.mark.parametrize(("group_by", "column"), [("key", "api_key"), ("team", "team_id")])
async def test_series_show_the_top_groups_and_the_rest(store: Store, group_by: str, column: str) -> None:
    rows = _rows()
    await store.record_spend(rows)
    for top in (1, 2, 8):
        got = await series(store, group_by, {}, START, END, top)
        shown, other, total = _expected(rows, column, top)
        assert [(g["id"], g["spend"], g["daily"]) for g in got["groups"]] == shown
        assert (got["other"]["daily"] if got["other"] else None) == other
        assert got["totals"]["spend"] == total and got["totals"]["requests"] == len(rows)
    await store.close()
