"""Durations and budget windows: ``"30s"``, ``"15m"``, ``"1h"``, ``"7d"``, ``"2w"``, ``"1mo"``.

``expiry`` turns a key's ``duration`` into an instant; ``next_reset`` gives the end of the current
budget window, aligned like LiteLLM's standardised reset times (day windows end at midnight UTC,
month windows on the first of a month) so every entity's daily budget resets together; it is the
end of the very window the policy enforces (``policy.budgets.window_at``, anchored at the epoch). Pure.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tollgate.errors import InvalidRequest
from tollgate.policy.budgets import Duration, window_at

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w|mo)\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: str, field: str = "duration") -> tuple[int, str]:
    match = _DURATION.match(value)
    if not match or int(match.group(1)) <= 0:
        raise InvalidRequest(
            f"{field}: '{value}' is not a duration (use e.g. 30s, 15m, 1h, 7d, 2w, 1mo)", param=field
        )
    return int(match.group(1)), match.group(2)


def expiry(duration: str, now: datetime, field: str = "duration") -> datetime:
    amount, unit = parse_duration(duration, field)
    if unit == "mo":
        return _add_months(now, amount)
    return now + timedelta(seconds=amount * _SECONDS[unit])


def next_reset(duration: str, now: datetime, field: str = "budget_duration") -> datetime:
    """The end of the enforcement window (``policy.budgets.window_at``) that contains ``now``:
    the instant the counters really start again, so ``budget_reset_at`` never disagrees with it."""
    amount, unit = parse_duration(duration, field)
    if unit == "mo":
        window = window_at(Duration(months=amount), now.timestamp())
    else:
        window = window_at(Duration(seconds=amount * _SECONDS[unit]), now.timestamp())
    return datetime.fromtimestamp(window.end, UTC)


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, _days_in(year, month))
    return moment.replace(year=year, month=month, day=day)


def _days_in(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return (following - timedelta(days=1)).day
