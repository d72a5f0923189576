"""``/global/spend/report`` and ``/user/daily/activity`` byte for byte: the service's answers
(read from the rollups on SQLite and PostgreSQL, from the rows in memory) rendered with orjson
equal a plain computation over the same spend rows, in LiteLLM's shapes and orders — days in
order, groups by spend descending then name, the same floats, keys and page metadata."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from tollgate.admin.spend import SpendService
from tollgate.auth.principal import MASTER
from tollgate.store import Store
from tollgate.store.records import SpendRow

START = datetime(2026, 5, 1, tzinfo=UTC)
KEYS = {f"k{i}": (f"u{i % 3}", f"t{i % 2}") for i in range(6)}
MODELS = ("m1", "m2", "m3")


def _rows() -> list[SpendRow]:
    rng = random.Random(17)
    rows = []
    for n in range(240):
        at = START + timedelta(days=rng.randrange(4), minutes=rng.randrange(24 * 60))
        key = rng.choice([*KEYS, None])
        user, team = KEYS[key] if key else (None, None)
        # Equal spends on one day tie-break by name; 15 decimals of the price survive as 12.
        price = Decimal(rng.choice((1, 2, 2, 3))).scaleb(-3)
        spend = price if n % 3 else Decimal(rng.randrange(10**15)).scaleb(-15)
        rows.append(SpendRow(
            f"r{n}", at, at + timedelta(seconds=1), api_key=key, user_id=user, team_id=team,
            org_id="o1", model_group=rng.choice(MODELS), prompt_tokens=rng.randrange(900),
            completion_tokens=rng.randrange(300), cache_read_tokens=rng.randrange(5),
            cache_write_tokens=rng.randrange(5), spend=spend.quantize(Decimal("1e-12")),
            status_code=rng.choice((200, 200, 200, 500)), cache_hit=n % 11 == 0,
        ))
    return rows


def _sums(rows: Iterable[SpendRow], key: Callable[[SpendRow], Any]) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = {}
    for r in rows:
        t = out.setdefault(key(r), [Decimal(0), 0, 0, 0, 0, 0, 0])
        for i, v in enumerate((r.spend, 1, r.prompt_tokens, r.completion_tokens, int(r.status_code >= 400),
                               r.cache_read_tokens, r.cache_write_tokens)):
            t[i] += v
    return out


def _by_day_and_spend(sums: dict[Any, list[Any]]) -> list[tuple[Any, list[Any]]]:
    """(day, group) keys ordered by day, then spend descending, then group ('' for none)."""
    return sorted(sums.items(), key=lambda kv: (kv[0][0], -kv[1][0], kv[0][1] or ""))


def _metrics(t: list[Any]) -> dict[str, Any]:
    spend, requests, prompt, completion, failed, cache_read, cache_write = t
    return {"spend": float(spend), "prompt_tokens": prompt, "completion_tokens": completion,
            "cache_read_input_tokens": cache_read, "cache_creation_input_tokens": cache_write,
            "total_tokens": prompt + completion, "api_requests": requests,
            "successful_requests": requests - failed, "failed_requests": failed}


def _day(r: SpendRow) -> str:
    return r.started_at.date().isoformat()


def expected_report(rows: list[SpendRow], group_by: str) -> list[dict[str, Any]]:
    column, name, plural = {"team": ("team_id", "team_name", "teams"),
                            "api_key": ("api_key", "api_key", "api_keys"),
                            "customer": ("user_id", "customer", "customers")}[group_by]
    days: dict[str, list[dict[str, Any]]] = {}
    for (day, group), t in _by_day_and_spend(_sums(rows, lambda r: (_day(r), getattr(r, column)))):
        days.setdefault(day, []).append({name: group, "total_spend": float(t[0]), "total_tokens": t[2] + t[3],
                                         "api_requests": t[1], "metadata": []})
    return [{"group_by_day": day, plural: entries} for day, entries in days.items()]


def expected_activity(rows: list[SpendRow], page: int, page_size: int) -> dict[str, Any]:
    totals = sorted(_sums(rows, _day).items())
    shown = totals[(page - 1) * page_size : page * page_size]
    results = []
    for day, t in shown:
        breakdown = {}
        for part, column in (("models", "model_group"), ("api_keys", "api_key")):
            groups = _by_day_and_spend(_sums((r for r in rows if _day(r) == day),
                                             lambda r, c=column, d=day: (d, getattr(r, c))))
            breakdown[part] = {g or "": {"metrics": _metrics(s)} for (_, g), s in groups}
        breakdown["providers"] = {}
        results.append({"date": day, "metrics": _metrics(t), "breakdown": breakdown})
    everything = [sum((t[i] for _, t in totals), start=Decimal(0) if i == 0 else 0) for i in range(7)]
    metadata = {f"total_{k}": v for k, v in _metrics(everything).items()}
    pages = max(1, -(-len(totals) // page_size))
    metadata.update({"page": page, "total_pages": pages, "has_more": page < pages})
    return {"results": results, "metadata": metadata}


WINDOWS = [(None, None), ("2026-05-02", "2026-05-03"), ("2026-05-01", "2026-05-01")]


async def test_answers_equal_plain_sums_of_the_rows_byte_for_byte(store: Store) -> None:
    rows = _rows()
    for i in range(0, len(rows), 50):
        await store.record_spend(rows[i : i + 50])
    spend = SpendService(store)
    for start, end in WINDOWS:
        lo = datetime.fromisoformat(start).replace(tzinfo=UTC) if start else START
        last = datetime.fromisoformat(end).replace(tzinfo=UTC) if end else START + timedelta(days=9)
        hi = last + timedelta(days=1)
        inside = [r for r in rows if lo <= r.started_at < hi]
        for group_by in ("api_key", "team", "customer"):
            got = await spend.report(MASTER, start_date=start, end_date=end, group_by=group_by)
            assert orjson.dumps(got) == orjson.dumps(expected_report(inside, group_by)), (group_by, start)
        filters: list[tuple[str, str | None, str | None, str | None]] = [
            ("everyone", None, None, None), ("one model", "m2", None, None),
            ("one key", None, "k1", None), ("one user", None, None, "u2"),
        ]
        for label, model, key, user in filters:
            chosen = [r for r in inside if (model is None or r.model_group == model)
                      and (key is None or r.api_key == key) and (user is None or r.user_id == user)]
            for page, page_size in ((1, 50), (2, 3)):
                got_activity = await spend.daily_activity(
                    MASTER, start_date=start, end_date=end, model=model, api_key=key, user_id=user,
                    page=page, page_size=page_size,
                )
                want = expected_activity(chosen, page, page_size)
                assert orjson.dumps(got_activity) == orjson.dumps(want), (label, start, page)
