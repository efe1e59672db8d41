"""Start-of-day equity per UTC day, the base of the daily-loss limit."""

from __future__ import annotations

__all__ = ["DAY_MS", "DailyBaseline"]

DAY_MS = 86_400_000


class DailyBaseline:
    """Tracks one agent's start-of-day equity: the first equity observed in each UTC day.

    Pure: the caller passes the time. Epoch milliseconds have no leap seconds, so
    ``now_ms // DAY_MS`` is the UTC day. An observation from an earlier day than the
    current one (a late or reordered update) changes nothing. To survive a restart,
    persist ``day`` and ``equity`` and pass them back to the constructor.
    """

    __slots__ = ("_day", "_equity")

    def __init__(self, *, day: int | None = None, equity: float | None = None) -> None:
        if (day is None) != (equity is None):
            raise ValueError("DailyBaseline: give both day and equity, or neither")
        self._day = day
        self._equity = equity

    @property
    def day(self) -> int | None:
        """The UTC day (days since the epoch) of the baseline, None before any observation."""
        return self._day

    @property
    def equity(self) -> float | None:
        """The start-of-day equity, None before any observation."""
        return self._equity

    def observe(self, equity: float, now_ms: int) -> float:
        """Record ``equity`` seen at ``now_ms``; return that UTC day's start-of-day equity."""
        day = now_ms // DAY_MS
        if self._day is None or self._equity is None or day > self._day:
            self._day, self._equity = day, equity
        return self._equity
