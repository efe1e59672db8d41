"""Start-of-day equity per UTC day (``hub.risk.baseline``), the base of the daily-loss limit."""

from __future__ import annotations

import pytest

from hub.risk import DAY_MS, DailyBaseline

DAY = 20_000  # an arbitrary UTC day number


def test_first_equity_of_the_day_is_the_baseline() -> None:
    baseline = DailyBaseline()
    assert baseline.observe(200.0, DAY * DAY_MS + 5) == 200.0
    assert baseline.observe(190.0, DAY * DAY_MS + 3_600_000) == 200.0
    assert (baseline.day, baseline.equity) == (DAY, 200.0)


@pytest.mark.parametrize(
    ("second_ms", "expected"),
    [
        ((DAY + 1) * DAY_MS - 1, 200.0),  # 23:59:59.999 UTC, same day
        ((DAY + 1) * DAY_MS, 180.0),  # midnight UTC: a new day
        ((DAY + 3) * DAY_MS + 7, 180.0),  # days later
    ],
)
def test_baseline_resets_at_utc_midnight(second_ms: int, expected: float) -> None:
    baseline = DailyBaseline()
    baseline.observe(200.0, DAY * DAY_MS)
    assert baseline.observe(180.0, second_ms) == expected


def test_an_update_from_an_earlier_day_changes_nothing() -> None:
    baseline = DailyBaseline()
    baseline.observe(200.0, DAY * DAY_MS)
    assert baseline.observe(150.0, DAY * DAY_MS - 1) == 200.0
    assert baseline.day == DAY


def test_baseline_restored_from_persisted_values() -> None:
    baseline = DailyBaseline(day=DAY, equity=210.0)
    assert baseline.observe(190.0, DAY * DAY_MS + 10) == 210.0


def test_a_persisted_day_without_its_equity_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="both day and equity"):
        DailyBaseline(day=DAY)
