"""Candles: the hub's own ticks folded into M1, M5, M15 and H1 bars of the bid (pure).

A :class:`CandleBook` holds the current bar of every (symbol, timeframe) of one agent.
:meth:`CandleBook.update` folds one bid into each timeframe and returns the bars it
changed (all four: every bid changes at least the close or the tick count). A bid whose
time falls in a later period opens a new bar there (the old one is then closed, and was
already returned at its last change); a time earlier than the current bar's open (a
bridge clock stepping back) is folded into the current bar, so bars never go back.

:meth:`CandleBook.resume` seeds the book with the last stored bar of each (symbol, tf),
so after a restart the current bar continues from records plus new ticks.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = ["TIMEFRAMES", "Bar", "CandleBook", "Timeframe", "bar_open"]

Timeframe = Literal["M1", "M5", "M15", "H1"]
TIMEFRAMES: dict[Timeframe, int] = {  # timeframe -> period in ms
    "M1": 60_000,
    "M5": 300_000,
    "M15": 900_000,
    "H1": 3_600_000,
}


class Bar(msgspec.Struct, frozen=True, kw_only=True):
    """One OHLC bar of the bid; ``t`` is its open time (epoch ms), ``ticks`` the bids in it."""

    symbol: str
    tf: Timeframe
    t: int
    o: float
    h: float
    l: float  # noqa: E741 - the wire name (SPEC 4)
    c: float
    ticks: int


def bar_open(time_ms: int, tf: Timeframe) -> int:
    """The open time of the ``tf`` bar holding ``time_ms``."""
    period = TIMEFRAMES[tf]
    return time_ms - time_ms % period


def _fold(bar: Bar | None, symbol: str, tf: Timeframe, bid: float, time_ms: int) -> Bar:
    t = bar_open(time_ms, tf)
    if bar is None or t > bar.t:
        return Bar(symbol=symbol, tf=tf, t=t, o=bid, h=bid, l=bid, c=bid, ticks=1)
    return Bar(
        symbol=symbol,
        tf=tf,
        t=bar.t,
        o=bar.o,
        h=max(bar.h, bid),
        l=min(bar.l, bid),
        c=bid,
        ticks=bar.ticks + 1,
    )


class CandleBook:
    """The current bars of one agent, per symbol and timeframe."""

    def __init__(self) -> None:
        self._bars: dict[tuple[str, Timeframe], Bar] = {}

    def update(self, symbol: str, bid: float, time_ms: int) -> list[Bar]:
        """Fold one bid at ``time_ms`` into every timeframe; the bars as they now are."""
        out: list[Bar] = []
        for tf in TIMEFRAMES:
            bar = _fold(self._bars.get((symbol, tf)), symbol, tf, bid, time_ms)
            self._bars[(symbol, tf)] = bar
            out.append(bar)
        return out

    def resume(self, bars: list[Bar]) -> None:
        """Continue from stored bars (the newest per symbol and tf wins; a newer bar this
        book already holds is kept)."""
        for bar in bars:
            held = self._bars.get((bar.symbol, bar.tf))
            if held is None or bar.t > held.t or (bar.t == held.t and bar.ticks > held.ticks):
                self._bars[(bar.symbol, bar.tf)] = bar

    def current(self, symbol: str, tf: Timeframe) -> Bar | None:
        return self._bars.get((symbol, tf))
