"""config.durations: the one duration grammar and the calendar budget windows; the budget refusal wording."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tollgate.config.durations import Duration, parse_duration, window_at
from tollgate.errors import ConfigError, InvalidRequest
from tollgate.policy.budgets import budget_exceeded_message


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", Duration(seconds=30)),
        ("15m", Duration(seconds=900)),
        ("1h", Duration(seconds=3600)),
        ("1d", Duration(seconds=86400)),
        ("7d", Duration(seconds=7 * 86400)),
        ("2w", Duration(seconds=14 * 86400)),
        ("1mo", Duration(months=1)),
        ("3MO", Duration(months=3)),
        ("1 d", Duration(seconds=86400)),
        (" 30 m ", Duration(seconds=1800)),
        ("1 mo", Duration(months=1)),
    ],
)
def test_parse_duration(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "d", "0d", "1y", "-1d", "1.5h", "mo", "1 d 2h", "1dd"])
def test_bad_durations_are_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidRequest, match="budget_duration: cannot read"):
        parse_duration(text, "budget_duration")
    with pytest.raises(ConfigError):
        parse_duration(text, error=ConfigError)


def test_day_windows_start_at_utc_midnight() -> None:
    window = window_at(parse_duration("1d"), ts(2025, 3, 10, 15, 30))
    assert (window.start, window.end) == (ts(2025, 3, 10), ts(2025, 3, 11))
    assert window.ttl(ts(2025, 3, 10, 23, 0), margin=0) == 3600


@pytest.mark.parametrize("text", ["7d", "1w", "7 D"])
def test_week_windows_start_on_monday_midnight_utc(text: str) -> None:
    # 2025-01-09 is a Thursday: its week runs from Monday 6 January to Monday 13 January.
    window = window_at(parse_duration(text), ts(2025, 1, 9, 17))
    assert (window.start, window.end) == (ts(2025, 1, 6), ts(2025, 1, 13))
    assert datetime.fromtimestamp(window.start, UTC).weekday() == 0
    # The first instant of a Monday opens a new week; the last minute of a Sunday does not.
    assert window_at(parse_duration(text), ts(2025, 1, 13)).start == ts(2025, 1, 13)
    assert window_at(parse_duration(text), ts(2025, 1, 12, 23, 59)).start == ts(2025, 1, 6)


def test_two_week_windows_start_on_a_monday() -> None:
    window = window_at(parse_duration("2w"), ts(2025, 1, 9))
    assert window.end - window.start == 14 * 86400
    assert datetime.fromtimestamp(window.start, UTC).weekday() == 0
    assert window.start <= ts(2025, 1, 9) < window.end


def test_hour_and_second_windows_are_aligned_on_the_clock() -> None:
    assert window_at(parse_duration("1h"), ts(2025, 1, 9, 17, 42)).start == ts(2025, 1, 9, 17)
    assert window_at(parse_duration("30s"), ts(2025, 1, 9) + 45).start == ts(2025, 1, 9) + 30


def test_month_windows_follow_the_calendar() -> None:
    window = window_at(parse_duration("1mo"), ts(2025, 2, 14, 8))
    assert (window.start, window.end) == (ts(2025, 2, 1), ts(2025, 3, 1))
    # LiteLLM resets 30d budgets on the 1st of each month: so does tollgate.
    thirty = window_at(parse_duration("30d"), ts(2025, 2, 14, 8))
    assert (thirty.start, thirty.end) == (ts(2025, 2, 1), ts(2025, 3, 1))
    quarter = window_at(parse_duration("3mo"), ts(2025, 5, 5))
    assert (quarter.start, quarter.end) == (ts(2025, 4, 1), ts(2025, 7, 1))
    december = window_at(parse_duration("1mo"), ts(2025, 12, 31, 23, 59))
    assert (december.start, december.end) == (ts(2025, 12, 1), ts(2026, 1, 1))


def test_lifetime_window() -> None:
    window = window_at(None, 123.0)
    assert window.lifetime
    assert window.ttl(123.0) is None


def test_message_keeps_litellm_wording() -> None:
    message = budget_exceeded_message(Decimal("1.20"), Decimal("1.0"), "team", "research", "1mo")
    assert message == (
        "Budget has been exceeded! Current cost: 1.2, Max budget: 1 (team 'research', 1mo window)"
    )
