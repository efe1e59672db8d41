"""The pure candle aggregator: OHLC of the bid per symbol and timeframe."""

from __future__ import annotations

from hub.candles import Bar, CandleBook, bar_open

T0 = 1_764_500_400_000  # 2025-11-30 11:00:00 UTC: an H1, M15, M5 and M1 bar opens here


def test_bids_in_one_minute_make_one_bar_per_timeframe() -> None:
    book = CandleBook()
    for i, bid in enumerate([2650.0, 2652.5, 2649.0, 2651.0]):
        bars = book.update("XAUUSD", bid, T0 + i * 1000)
    assert [b.tf for b in bars] == ["M1", "M5", "M15", "H1"]
    for bar in bars:
        assert (bar.t, bar.o, bar.h, bar.l, bar.c, bar.ticks) == (
            T0,
            2650.0,
            2652.5,
            2649.0,
            2651.0,
            4,
        )


def test_a_bid_in_the_next_minute_opens_a_new_m1_bar_only() -> None:
    book = CandleBook()
    book.update("XAUUSD", 2650.0, T0)
    book.update("XAUUSD", 2655.0, T0 + 59_999)
    m1, m5, _, h1 = book.update("XAUUSD", 2640.0, T0 + 60_000)
    assert (m1.t, m1.o, m1.h, m1.l, m1.c, m1.ticks) == (
        T0 + 60_000,
        2640.0,
        2640.0,
        2640.0,
        2640.0,
        1,
    )
    assert (m5.t, m5.o, m5.h, m5.l, m5.c, m5.ticks) == (T0, 2650.0, 2655.0, 2640.0, 2640.0, 3)
    assert h1.t == T0
    assert bar_open(T0 + 15 * 60_000 + 5, "M15") == T0 + 15 * 60_000


def test_a_clock_stepping_back_folds_into_the_current_bar() -> None:
    book = CandleBook()
    book.update("XAUUSD", 2650.0, T0 + 60_000)
    m1, *_ = book.update("XAUUSD", 2660.0, T0 + 59_000)
    assert (m1.t, m1.h, m1.c, m1.ticks) == (T0 + 60_000, 2660.0, 2660.0, 2)


def test_symbols_have_their_own_bars() -> None:
    book = CandleBook()
    book.update("XAUUSD", 2650.0, T0)
    eur, *_ = book.update("EURUSD", 1.1, T0)
    assert (eur.symbol, eur.o, eur.ticks) == ("EURUSD", 1.1, 1)
    assert book.current("XAUUSD", "M1") is not None
    assert book.current("XAUUSD", "M1").o == 2650.0  # type: ignore[union-attr]


def test_resumed_bars_continue_with_new_ticks() -> None:
    stored = Bar(symbol="XAUUSD", tf="H1", t=T0, o=2650.0, h=2660.0, l=2645.0, c=2655.0, ticks=7)
    book = CandleBook()
    book.resume([stored])
    *_, h1 = book.update("XAUUSD", 2640.0, T0 + 30 * 60_000)
    assert (h1.t, h1.o, h1.h, h1.l, h1.c, h1.ticks) == (T0, 2650.0, 2660.0, 2640.0, 2640.0, 8)


def test_resume_keeps_a_newer_bar_the_book_already_holds() -> None:
    book = CandleBook()
    book.update("XAUUSD", 2650.0, T0 + 3_600_000)
    old = Bar(symbol="XAUUSD", tf="H1", t=T0, o=1.0, h=1.0, l=1.0, c=1.0, ticks=9)
    book.resume([old])
    assert book.current("XAUUSD", "H1").t == T0 + 3_600_000  # type: ignore[union-attr]


def test_resume_takes_a_stored_bar_that_went_further_than_the_one_held() -> None:
    book = CandleBook()  # this instance polled the agent a while ago; another one went on
    book.update("XAUUSD", 2650.0, T0)
    further = Bar(symbol="XAUUSD", tf="H1", t=T0, o=2650.0, h=2670.0, l=2640.0, c=2660.0, ticks=40)
    book.resume([further])
    *_, h1 = book.update("XAUUSD", 2661.0, T0 + 1000)
    assert (h1.h, h1.l, h1.c, h1.ticks) == (2670.0, 2640.0, 2661.0, 41)
