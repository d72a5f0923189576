"""Budget windows and budget decisions. Pure: time is a number passed in, money is ``Decimal``.

A budget is ``max_budget`` dollars per ``duration``. Durations use LiteLLM's spelling: ``30s``,
``15m`` (minutes), ``1h``, ``1d``, ``7d``, ``2w``, ``1mo`` (calendar months); ``None`` is a
lifetime budget. Windows are fixed and anchored, as LiteLLM resets budgets on a schedule: a
duration of N seconds starts at ``anchor + k·N`` (the anchor defaults to the Unix epoch, so
``1d`` windows start at 00:00 UTC); ``N mo`` windows start on the anchor's day of month at its
time of day (the 1st, 00:00 UTC by default), a shorter month clamping to its last day.
May import: ``errors``.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from tollgate.errors import ConfigError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


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


def parse_duration(text: str) -> Duration:
    """``"30s"``, ``"1h"``, ``"7d"``, ``"1mo"`` … → ``Duration``; ``ConfigError`` otherwise."""
    spelled = text.strip().lower()
    if spelled.endswith("mo"):
        number, months = spelled[:-2], True
    else:
        number, months = spelled[:-1], False
    unit = spelled[-1:]
    if not number.isdigit() or int(number) <= 0 or (not months and unit not in _UNITS):
        raise ConfigError(f"budget_duration: cannot read {text!r} (use e.g. 30s, 15m, 1h, 1d, 7d, 1mo)")
    if months:
        return Duration(months=int(number))
    return Duration(seconds=int(number) * _UNITS[unit])


def window_at(duration: Duration | None, now: float, anchor: float = 0.0) -> Window:
    """The window of ``duration`` containing ``now``, anchored at ``anchor`` (Unix seconds)."""
    if duration is None:
        return LIFETIME
    if duration.seconds:
        length = duration.seconds
        start = anchor + ((now - anchor) // length) * length
        return Window(start, start + length)
    return _month_window(duration.months, now, anchor)


def _month_window(months: int, now: float, anchor: float) -> Window:
    base = datetime.fromtimestamp(anchor, UTC)
    current = datetime.fromtimestamp(now, UTC)
    elapsed = (current.year - base.year) * 12 + (current.month - base.month)
    step = elapsed // months
    start = _add_months(base, step * months)
    if start.timestamp() > now:
        step -= 1
        start = _add_months(base, step * months)
    end = _add_months(base, (step + 1) * months)
    return Window(start.timestamp(), end.timestamp())


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def exceeds(spend: Decimal, reserved: Decimal, estimate: Decimal, max_budget: Decimal) -> bool:
    """Whether admitting a request of ``estimate`` dollars would pass ``max_budget``.

    Already spent-or-reserved at the limit refuses even a free request (LiteLLM refuses when
    spend ≥ max_budget); otherwise the estimate must fit in what is left.
    """
    used = spend + reserved
    return used >= max_budget or used + estimate > max_budget


def budget_exceeded_message(
    current: Decimal, max_budget: Decimal, kind: str, name: str, duration: str | None
) -> str:
    """LiteLLM's wording, plus the entity and window so the caller knows which budget refused."""
    window = f"{duration} window" if duration else "lifetime"
    return (
        f"Budget has been exceeded! Current cost: {current.normalize():f}, "
        f"Max budget: {max_budget.normalize():f} ({kind} '{name}', {window})"
    )
