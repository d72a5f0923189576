"""config.durations (the one duration grammar, budget windows) and the budget decisions of policy.budgets."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tollgate.config.durations import Duration, parse_duration, window_at
from tollgate.errors import ConfigError, InvalidRequest
from tollgate.policy.budgets import budget_exceeded_message, exceeds


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


def test_windows_anchored_at_a_budget_start() -> None:
    anchor = ts(2025, 1, 1, 12)
    window = window_at(parse_duration("7d"), ts(2025, 1, 9), anchor)
    assert (window.start, window.end) == (ts(2025, 1, 8, 12), ts(2025, 1, 15, 12))
    assert window_at(parse_duration("30s"), anchor + 45, anchor).start == anchor + 30


def test_month_windows_follow_the_calendar() -> None:
    window = window_at(parse_duration("1mo"), ts(2025, 2, 14, 8))
    assert (window.start, window.end) == (ts(2025, 2, 1), ts(2025, 3, 1))
    anchored = window_at(parse_duration("1mo"), ts(2025, 2, 20), ts(2025, 1, 31))
    assert (anchored.start, anchored.end) == (ts(2025, 1, 31), ts(2025, 2, 28))
    quarter = window_at(parse_duration("3mo"), ts(2025, 5, 5), ts(2025, 1, 1))
    assert (quarter.start, quarter.end) == (ts(2025, 4, 1), ts(2025, 7, 1))
    early = window_at(parse_duration("1mo"), ts(2025, 3, 10), ts(2025, 1, 15))
    assert (early.start, early.end) == (ts(2025, 2, 15), ts(2025, 3, 15))


def test_lifetime_window() -> None:
    window = window_at(None, 123.0)
    assert window.lifetime
    assert window.ttl(123.0) is None


def test_exceeds() -> None:
    d = Decimal
    assert not exceeds(d("0.5"), d("0.2"), d("0.3"), d("1"))  # exactly at the limit fits
    assert exceeds(d("0.5"), d("0.2"), d("0.31"), d("1"))
    assert exceeds(d("1"), d("0"), d("0"), d("1"))  # spent in full refuses a free request
    assert not exceeds(d("0.99"), d("0"), d("0"), d("1"))


def test_message_keeps_litellm_wording() -> None:
    message = budget_exceeded_message(Decimal("1.20"), Decimal("1.0"), "team", "research", "1mo")
    assert message == (
        "Budget has been exceeded! Current cost: 1.2, Max budget: 1 (team 'research', 1mo window)"
    )
