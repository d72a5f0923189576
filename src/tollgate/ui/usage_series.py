"""Daily spend groups → the Usage page's chart series: one row of daily spend per group (the top
``top`` groups by spend, the rest summed as "other"), each with a readable label (a key's alias,
a team's alias, a user's email) looked up for the shown groups only."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from tollgate.store import GROUP_COLUMNS, Store
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


def _total(groups: Sequence[SpendGroup]) -> dict[str, Any]:
    total = _empty()
    for g in groups:
        _add(total, g)
    return total


def _entries(groups: Sequence[SpendGroup], index: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    per_group: dict[str, list[SpendGroup]] = {}
    for g in groups:
        per_group.setdefault(g.group or "", []).append(g)
    return {name: {**_total(gs), "daily": _daily(gs, index)} for name, gs in per_group.items()}


def _daily(groups: Sequence[SpendGroup], index: Mapping[str, int]) -> list[Decimal]:
    daily = [Decimal(0)] * len(index)
    for g in groups:
        if g.day is not None and g.day in index:
            daily[index[g.day]] += g.spend
    return daily


async def _top_groups(
    store: Store, group_by: str, filters: Mapping[str, str], start: datetime, end: datetime, top: int,
    index: Mapping[str, int],
) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]] | None:
    """(overall, ranked entries) from totals per group, the proxy's days and the days of the
    shown groups only: a dozen small reads however many groups there are. ``None`` when a shown
    group is "none" (its days cannot be selected by a filter)."""
    column = GROUP_COLUMNS[group_by]
    ranked = await store.spend_groups(group_by, filters=filters, start=start, end=end)  # by spend
    if any(g.group is None for g in ranked[:top]):
        return None
    everyone = await store.spend_groups(None, by_day=True, filters=filters, start=start, end=end)
    overall = _total(everyone)
    entries: list[tuple[str, dict[str, Any]]] = []
    rest_daily = _daily(everyone, index)
    for g in ranked[:top]:
        assert g.group is not None
        days = await store.spend_groups(
            None, by_day=True, filters={**filters, column: g.group}, start=start, end=end
        )
        entry = {**_total([g]), "daily": _daily(days, index)}
        rest_daily = [a - b for a, b in zip(rest_daily, entry["daily"], strict=True)]
        entries.append((g.group, entry))
    for g in ranked[top:]:
        entries.append((g.group or "", {**_total([g]), "daily": [Decimal(0)] * len(index)}))
    if len(ranked) > top:
        # Only the rest's days together are shown ("N more"): what the shown groups leave of the
        # total, carried by the first of them (the others' days stay zero, so the sum is right).
        entries[top][1]["daily"] = rest_daily
    return overall, entries


async def series(
    store: Store, group_by: str, filters: Mapping[str, str], start: datetime, end: datetime, top: int
) -> dict[str, Any]:
    days = _days(start, end)
    index = {d: i for i, d in enumerate(days)}
    found = await _top_groups(store, group_by, filters, start, end, top, index)
    if found is None:
        groups = await store.spend_groups(group_by, by_day=True, filters=filters, start=start, end=end)
        per_group = _entries(groups, index)
        overall = _total(groups)
        ranked = sorted(per_group.items(), key=lambda item: (-item[1]["spend"], item[0]))
    else:
        overall, ranked = found
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
