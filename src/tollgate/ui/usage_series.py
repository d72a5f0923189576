"""Daily spend groups → the Usage page's chart series: one row of daily spend per group (the top
``top`` groups by spend, the rest summed as "other"), each with a readable label (a key's alias,
a team's alias, a user's email) looked up for the shown groups only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tollgate.store import Store
from tollgate.store.records import SpendGroup


def _days(start: datetime, end: datetime) -> list[str]:
    out, day = [], start.date()
    while datetime.combine(day, datetime.min.time(), start.tzinfo) < end:
        out.append(day.isoformat())
        day += timedelta(days=1)
    return out


async def _labels(store: Store, group_by: str, ids: Sequence[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    async with store.transaction() as tx:
        for group_id in ids:
            if group_by == "key":
                key = await tx.keys.get(group_id)
                if key is not None:
                    labels[group_id] = key.key_alias or key.key_name
            elif group_by == "team":
                team = await tx.teams.get(group_id)
                if team is not None and team.alias:
                    labels[group_id] = team.alias
            elif group_by == "user":
                user = await tx.users.get(group_id)
                if user is not None and (user.email or user.alias):
                    labels[group_id] = str(user.email or user.alias)
    return labels


def _empty() -> dict[str, Any]:
    return {"spend": Decimal(0), "prompt_tokens": 0, "completion_tokens": 0, "requests": 0,
            "failed_requests": 0}


def _add(total: dict[str, Any], g: SpendGroup) -> None:
    total["spend"] += g.spend
    total["prompt_tokens"] += g.prompt_tokens
    total["completion_tokens"] += g.completion_tokens
    total["requests"] += g.requests
    total["failed_requests"] += g.failed_requests


def _render(total: dict[str, Any]) -> dict[str, Any]:
    return {**total, "spend": float(total["spend"]),
            "total_tokens": total["prompt_tokens"] + total["completion_tokens"]}


async def series(
    store: Store, group_by: str, groups: Sequence[SpendGroup], start: datetime, end: datetime, top: int
) -> dict[str, Any]:
    days = _days(start, end)
    index = {d: i for i, d in enumerate(days)}
    per_group: dict[str, dict[str, Any]] = {}
    overall = _empty()
    for g in groups:
        name = g.group or ""
        entry = per_group.setdefault(name, {**_empty(), "daily": [Decimal(0)] * len(days)})
        _add(entry, g)
        _add(overall, g)
        if g.day in index:
            entry["daily"][index[g.day]] += g.spend
    ranked = sorted(per_group.items(), key=lambda item: (-item[1]["spend"], item[0]))
    shown, rest = ranked[:top], ranked[top:]
    labels = await _labels(store, group_by, [name for name, _ in shown if name])
    out = []
    for name, entry in shown:
        out.append({"id": name or None, "label": labels.get(name) or name or "(none)",
                    **_render({k: v for k, v in entry.items() if k != "daily"}),
                    "daily": [float(v) for v in entry["daily"]]})
    other = None
    if rest:
        summed = {**_empty(), "daily": [Decimal(0)] * len(days)}
        for _, entry in rest:
            for k in ("spend", "prompt_tokens", "completion_tokens", "requests", "failed_requests"):
                summed[k] += entry[k]
            summed["daily"] = [a + b for a, b in zip(summed["daily"], entry["daily"], strict=True)]
        other = {"id": None, "label": f"{len(rest)} more", **_render(
            {k: v for k, v in summed.items() if k != "daily"}), "daily": [float(v) for v in summed["daily"]]}
    return {"group_by": group_by, "start_date": days[0] if days else None,
            "end_date": days[-1] if days else None, "days": days, "totals": _render(overall),
            "groups": out, "other": other}


__all__ = ["series"]
