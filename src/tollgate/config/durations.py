"""The one duration grammar and the budget windows built on it. Pure: time is a number or a
``datetime`` passed in.

Every setting that takes a duration uses it (``budget_duration``, a key's ``duration``,
``maximum_spend_logs_retention_period``, ``internal_user_budget_duration`` …): a positive whole
number and a unit, LiteLLM's spelling, with or without a space and in any case: ``30s``, ``15m``
(minutes), ``1h``, ``1d``, ``7d``, ``2w``, ``1mo`` (calendar months). Anything else is refused
where it is written (a config error at start, a 400 on an admin write), never at request time.

Budget windows are calendar windows in UTC, as LiteLLM resets budgets: they never depend on when a
budget was created, so every replica and every admin view agrees on them. A duration of whole weeks
(``7d``, ``1w``, ``2w`` …) starts on a Monday at 00:00 UTC (N-week windows count from Monday
1970-01-05); ``30d`` and ``N mo`` are calendar months starting on the 1st at 00:00 UTC (LiteLLM also
resets ``30d`` on the 1st); any other duration of N seconds starts at a multiple of N since the Unix
epoch, so ``1d`` starts at 00:00 UTC and ``1h`` on the hour. A budget set mid-window gets its full
amount for the rest of that window (a budget created on a Thursday with ``7d`` resets the next
Monday): the first window is the current calendar one, by design. ``None`` is a lifetime budget.
May import: ``errors``.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tollgate.errors import GatewayError, InvalidRequest

_GRAMMAR = re.compile(r"^\s*(\d+)\s*(mo|s|m|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SPELLING = "a whole number and a unit: s, m (minutes), h, d, w or mo (months), e.g. 30s, 15m, 1h, 7d, 1mo"


@dataclass(frozen=True, slots=True)
class Duration:
    """A fixed number of ``seconds``, or a number of calendar ``months``."""

    seconds: int = 0
    months: int = 0


@dataclass(frozen=True, slots=True)
class Window:
    start: float  # Unix seconds, inclusive
    end: float  # Unix seconds, exclusive; inf for a lifetime budget

    @property
    def lifetime(self) -> bool:
        return self.end == float("inf")

    def ttl(self, now: float, margin: int = 3600) -> int | None:
        """Seconds a counter for this window must live (past its end, plus a margin)."""
        return None if self.lifetime else max(1, int(self.end - now) + margin)


LIFETIME = Window(float("-inf"), float("inf"))


def parse_duration(
    text: str, field: str = "duration", *, error: type[GatewayError] = InvalidRequest
) -> Duration:
    """``"30s"``, ``"1 h"``, ``"7D"``, ``"1mo"`` … → ``Duration``; ``error`` naming ``field`` otherwise."""
    match = _GRAMMAR.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) <= 0:
        raise error(f"{field}: cannot read {text!r} as a duration; use {SPELLING}", param=field)
    amount, unit = int(match.group(1)), match.group(2).lower()
    if unit == "mo":
        return Duration(months=amount)
    return Duration(seconds=amount * _UNITS[unit])


WEEK = 7 * 86400
MONTH_DAYS = 30 * 86400  # LiteLLM's "30d" resets on the 1st of each month
FIRST_MONDAY = 4 * 86400  # 1970-01-05 00:00 UTC, the first Monday after the epoch


def window_at(duration: Duration | None, now: float) -> Window:
    """The window of ``duration`` containing ``now`` (Unix seconds); see the module docstring."""
    if duration is None:
        return LIFETIME
    if duration.months or duration.seconds == MONTH_DAYS:
        return _month_window(duration.months or 1, now)
    length = duration.seconds
    anchor = FIRST_MONDAY if length % WEEK == 0 else 0
    start = anchor + ((now - anchor) // length) * length
    return Window(start, start + length)


def _month_window(months: int, now: float) -> Window:
    current = datetime.fromtimestamp(now, UTC)
    index = current.year * 12 + current.month - 1
    first = index - index % months
    start = datetime(first // 12, first % 12 + 1, 1, tzinfo=UTC)
    end = add_months(start, months)
    return Window(start.timestamp(), end.timestamp())


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus calendar months, the day clamped to the target month's last day."""
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def after(duration: Duration, moment: datetime) -> datetime:
    """``moment`` plus ``duration`` (a key's expiry, a retention cut-off when subtracted)."""
    if duration.months:
        return add_months(moment, duration.months)
    return moment + timedelta(seconds=duration.seconds)


def before(duration: Duration, moment: datetime) -> datetime:
    if duration.months:
        return add_months(moment, -duration.months)
    return moment - timedelta(seconds=duration.seconds)


def expiry(text: str, now: datetime, field: str = "duration") -> datetime:
    """When something created ``now`` with a ``duration`` of ``text`` expires (a key's ``duration``)."""
    return after(parse_duration(text, field), now)


def next_reset(text: str, now: datetime, field: str = "budget_duration") -> datetime:
    """The end of the enforcement window of a ``text`` budget that contains ``now``: the instant the
    counters really start again, so a reported ``budget_reset_at`` never disagrees with enforcement."""
    window = window_at(parse_duration(text, field), now.timestamp())
    return datetime.fromtimestamp(window.end, UTC)
