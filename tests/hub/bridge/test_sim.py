"""The simulated broker account: prices, fills, P&L and margin per contract spec, stops."""

from __future__ import annotations

import math
import statistics

import pytest

from hub.bridge.models import Action
from hub.bridge.sim import FIRST_TICKET, NotFound, OrderRefused, SimMarket
from hub.config import SymbolSpec

T0 = 1_700_000_000_000

SYMBOLS = {
    "XAUUSD": SymbolSpec(contract_size=100, digits=2, max_lots=50),
    "EURUSD": SymbolSpec(contract_size=100_000, digits=5, max_lots=50),
    "GBPUSD": SymbolSpec(contract_size=100_000, digits=5, max_lots=50),
    "USDJPY": SymbolSpec(contract_size=100_000, digits=3, max_lots=50, quote_currency="JPY"),
    "US500": SymbolSpec(contract_size=1, digits=2, lot_step=0.01, min_lots=0.1, max_lots=10),
}


def market(balance: float = 10_000.0, seed: int | None = 1, leverage: int = 100) -> SimMarket:
    return SimMarket(SYMBOLS, balance, leverage, seed=seed, start_ms=T0)


# -- prices -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "mid", "spread"),
    [
        ("XAUUSD", 2650.0, 0.30),
        ("EURUSD", 1.08, 0.00010),
        ("GBPUSD", 1.27, 0.00012),
        ("USDJPY", 150.0, 0.015),
        ("US500", 100.0, 0.02),
    ],
)
def test_starting_quotes_are_realistic(symbol: str, mid: float, spread: float) -> None:
    tick = market().tick(symbol)
    assert tick.ask - tick.bid == pytest.approx(spread, abs=1e-9)
    assert (tick.bid + tick.ask) / 2 == pytest.approx(mid, rel=1e-4)
    assert tick.time == T0


def test_quotes_stay_rounded_with_bid_below_ask() -> None:
    m = market()
    for i in range(1, 2001):
        m.step(T0 + i * 100)
        for symbol, spec in SYMBOLS.items():
            tick = m.tick(symbol)
            assert tick.bid < tick.ask
            for price in (tick.bid, tick.ask):
                assert round(price, spec.digits) == price


def test_a_poller_sees_prices_move_within_a_second() -> None:
    m = market()
    changed = {s: 0 for s in ("XAUUSD", "EURUSD", "GBPUSD", "USDJPY")}
    for i in range(1, 101):
        before = {s: m.tick(s).bid for s in changed}
        m.step(T0 + i * 1000)
        for s in changed:
            changed[s] += m.tick(s).bid != before[s]
    assert all(n >= 80 for n in changed.values()), changed


def test_gold_moves_tens_of_cents_a_second() -> None:
    gold = market()
    moves = []
    for i in range(1, 201):
        last = gold.tick("XAUUSD").bid
        gold.step(T0 + i * 1000)
        moves.append(abs(gold.tick("XAUUSD").bid - last))
    assert 0.05 < statistics.mean(moves) < 1.0


def test_volatility_per_second_does_not_depend_on_polling_rate() -> None:
    def one_second_moves(substeps: int, seed: int) -> list[float]:
        m = market(seed=seed)
        out = []
        now = T0
        for _ in range(1500):
            start = m.tick("XAUUSD").bid
            for _ in range(substeps):
                now += 1000 // substeps
                m.step(now)
            out.append(m.tick("XAUUSD").bid - start)
        return out

    coarse = statistics.pstdev(one_second_moves(1, seed=3))
    fine = statistics.pstdev(one_second_moves(10, seed=4))
    assert 0.8 < fine / coarse < 1.25


def test_same_seed_same_walk_and_different_seed_different_walk() -> None:
    a, b, c = market(seed=42), market(seed=42), market(seed=43)
    for i in range(1, 50):
        for m in (a, b, c):
            m.step(T0 + i * 250)
    assert [a.tick(s) for s in SYMBOLS] == [b.tick(s) for s in SYMBOLS]
    assert a.tick("XAUUSD") != c.tick("XAUUSD")


def test_eurusd_and_gbpusd_returns_are_correlated() -> None:
    m = market(seed=9)
    eur, gbp = [], []
    prev_e, prev_g = m.tick("EURUSD").bid, m.tick("GBPUSD").bid
    for i in range(1, 3001):
        m.step(T0 + i * 1000)
        e, g = m.tick("EURUSD").bid, m.tick("GBPUSD").bid
        eur.append(math.log(e / prev_e))
        gbp.append(math.log(g / prev_g))
        prev_e, prev_g = e, g
    assert statistics.correlation(eur, gbp) > 0.5
    assert abs(statistics.correlation(eur[1:], gbp[:-1])) < 0.2  # same-time moves only


def test_pin_holds_a_price_and_unpin_walks_on_from_it() -> None:
    m = market()
    m.pin("XAUUSD", 2600.0, 2600.3)
    m.step(T0 + 5000)
    assert (m.tick("XAUUSD").bid, m.tick("XAUUSD").ask) == (2600.0, 2600.3)
    m.unpin("XAUUSD")
    m.step(T0 + 6000)
    assert m.tick("XAUUSD").bid != 2600.0
    assert abs(m.tick("XAUUSD").bid - 2600.0) < 5


def test_pin_refuses_a_crossed_price() -> None:
    with pytest.raises(OrderRefused, match="ask"):
        market().pin("EURUSD", 1.1, 1.1)


def test_tick_of_unknown_symbol_is_not_found() -> None:
    with pytest.raises(NotFound, match="symbol: unknown symbol 'NOPE'"):
        market().tick("NOPE")


# -- fills, P&L and margin ----------------------------------------------------


def test_buy_fills_at_ask_and_sell_at_bid_with_increasing_tickets() -> None:
    m = market()
    m.pin("XAUUSD", 2650.0, 2650.3)
    buy = m.trade("XAUUSD", "buy", 0.01, comment="amd long")
    sell = m.trade("XAUUSD", "sell", 0.02)
    assert (buy.ticket, buy.open_price, buy.comment) == (FIRST_TICKET, 2650.3, "amd long")
    assert (sell.ticket, sell.open_price) == (FIRST_TICKET + 1, 2650.0)
    assert [p.ticket for p in m.positions()] == [1001, 1002]


def test_xauusd_hundredth_lot_moving_one_dollar_is_one_dollar() -> None:
    m = market()
    m.pin("XAUUSD", 2650.0, 2650.3)
    m.trade("XAUUSD", "buy", 0.01)
    m.pin("XAUUSD", 2651.3, 2651.6)
    assert m.positions()[0].profit == 1.00


def test_eurusd_tenth_lot_moving_ten_pips_is_ten_dollars() -> None:
    m = market()
    m.pin("EURUSD", 1.08000, 1.08010)
    m.trade("EURUSD", "sell", 0.1)
    m.pin("EURUSD", 1.07890, 1.07900)
    assert m.positions()[0].profit == 10.00


def test_usdjpy_profit_is_converted_from_yen_at_the_current_price() -> None:
    m = market()
    m.pin("USDJPY", 150.000, 150.015)
    m.trade("USDJPY", "buy", 1.0)
    m.pin("USDJPY", 151.015, 151.030)
    expected = (151.015 - 150.015) * 100_000 / ((151.015 + 151.030) / 2)
    assert m.positions()[0].profit == pytest.approx(expected, abs=0.01)
    assert m.positions()[0].profit == pytest.approx(662.15, abs=0.01)


def test_margin_per_contract_spec_in_account_currency() -> None:
    m = market()
    m.pin("XAUUSD", 2650.0, 2650.3)
    m.pin("EURUSD", 1.08000, 1.08010)
    assert m.margin_for("XAUUSD", 0.01, 2650.3) == pytest.approx(26.503)
    assert m.margin_for("EURUSD", 0.1, 1.0801) == pytest.approx(108.01)
    assert m.margin_for("USDJPY", 0.1, 150.015) == pytest.approx(100.0)
    m.trade("XAUUSD", "buy", 0.01)
    m.trade("USDJPY", "sell", 0.1)
    assert m.account().margin == 126.50


def test_equity_is_balance_plus_floating_profit_and_free_margin_the_rest() -> None:
    m = market(balance=200)
    m.pin("XAUUSD", 2650.0, 2650.3)
    m.trade("XAUUSD", "buy", 0.01)
    m.pin("XAUUSD", 2648.3, 2648.6)
    acct = m.account()
    assert (acct.balance, acct.profit, acct.equity) == (200.0, -2.0, 198.0)
    assert acct.margin == 26.5
    assert acct.free_margin == 171.5
    assert (acct.currency, acct.leverage) == ("USD", 100)


def test_order_needing_more_than_free_margin_is_refused() -> None:
    m = market(balance=200)
    with pytest.raises(OrderRefused, match="lots: not enough free margin"):
        m.trade("XAUUSD", "buy", 0.1)  # needs ~265
    assert m.positions() == []


@pytest.mark.parametrize(
    ("lots", "reason"),
    [(0.0, "must be > 0"), (0.015, "lot step"), (51.0, "outside"), (-1.0, "must be > 0")],
)
def test_bad_lots_are_refused_naming_lots(lots: float, reason: str) -> None:
    with pytest.raises(OrderRefused, match=f"lots: .*{reason}"):
        market().trade("EURUSD", "buy", lots)


def test_lots_below_the_symbol_minimum_are_refused() -> None:
    with pytest.raises(OrderRefused, match=r"lots: 0\.05 is outside"):
        market().trade("US500", "buy", 0.05)


def test_unknown_symbol_order_is_refused() -> None:
    with pytest.raises(OrderRefused, match="symbol: unknown symbol"):
        market().trade("BTCUSD", "buy", 0.01)


@pytest.mark.parametrize(
    ("action", "sl", "tp", "field"),
    [
        ("buy", 2650.0, None, "sl"),  # sl must be below bid 2650.0
        ("buy", None, 2649.0, "tp"),
        ("sell", 2650.3, None, "sl"),  # sl must be above ask 2650.3
        ("sell", None, 2651.0, "tp"),
        ("buy", -5.0, None, "sl"),
    ],
)
def test_stops_on_the_wrong_side_are_refused(
    action: Action, sl: float | None, tp: float | None, field: str
) -> None:
    m = market()
    m.pin("XAUUSD", 2650.0, 2650.3)
    with pytest.raises(OrderRefused, match=f"^{field}: "):
        m.trade("XAUUSD", action, 0.01, sl, tp)


def test_stops_on_the_right_side_are_kept() -> None:
    m = market()
    m.pin("XAUUSD", 2650.0, 2650.3)
    buy = m.trade("XAUUSD", "buy", 0.01, sl=2649.9, tp=2650.1)
    sell = m.trade("XAUUSD", "sell", 0.01, sl=2650.4, tp=2650.2)
    assert (buy.sl, buy.tp, sell.sl, sell.tp) == (2649.9, 2650.1, 2650.4, 2650.2)


# -- close, modify, stops, history -------------------------------------------


def test_close_realises_profit_into_balance_and_history() -> None:
    m = market(balance=1000)
    m.pin("XAUUSD", 2650.0, 2650.3)
    ticket = m.trade("XAUUSD", "buy", 0.02, comment="c1").ticket
    m.step(T0 + 1000)
    m.pin("XAUUSD", 2652.3, 2652.6)
    closed = m.close(ticket)
    assert (closed.close_price, closed.profit, closed.reason) == (2652.3, 4.0, "close")
    assert (closed.open_time, closed.close_time, closed.comment) == (T0, T0 + 1000, "c1")
    assert m.account().balance == 1004.0
    assert m.positions() == []
    assert m.history() == [closed]


def test_partial_close_keeps_the_ticket_for_the_remainder() -> None:
    m = market()
    m.pin("EURUSD", 1.08000, 1.08010)
    ticket = m.trade("EURUSD", "sell", 0.3).ticket
    m.pin("EURUSD", 1.07890, 1.07900)
    closed = m.close(ticket, 0.1)
    assert (closed.ticket, closed.lots, closed.close_price, closed.profit) == (
        ticket,
        0.1,
        1.079,
        10.0,
    )
    [rest] = m.positions()
    assert (rest.ticket, rest.lots) == (ticket, 0.2)
    assert m.account().balance == 10_010.0


@pytest.mark.parametrize(("lots", "reason"), [(0.5, "more than"), (0.025, "lot step")])
def test_partial_close_of_bad_lots_is_refused(lots: float, reason: str) -> None:
    m = market()
    ticket = m.trade("EURUSD", "buy", 0.3).ticket
    with pytest.raises(OrderRefused, match=f"lots: .*{reason}"):
        m.close(ticket, lots)
    assert m.positions()[0].lots == 0.3


def test_partial_close_leaving_less_than_min_lots_is_refused() -> None:
    m = market()
    ticket = m.trade("US500", "buy", 0.3).ticket
    with pytest.raises(OrderRefused, match="below min_lots"):
        m.close(ticket, 0.25)


def test_close_or_modify_of_unknown_ticket_is_not_found() -> None:
    m = market()
    with pytest.raises(NotFound, match="ticket: no open position 999"):
        m.close(999)
    with pytest.raises(NotFound, match="ticket"):
        m.modify(999, sl=1.0)


def test_modify_validates_keeps_and_removes_stops() -> None:
    m = market()
    m.pin("XAUUSD", 2650.0, 2650.3)
    ticket = m.trade("XAUUSD", "buy", 0.01, sl=2640.0, tp=2660.0).ticket
    with pytest.raises(OrderRefused, match=r"^sl: "):
        m.modify(ticket, sl=2655.0)
    assert m.modify(ticket, sl=2645.0).tp == 2660.0  # None keeps
    moved = m.modify(ticket, tp=0)  # 0 removes
    assert (moved.sl, moved.tp) == (2645.0, None)


def test_stop_loss_triggers_on_a_pinned_price_at_the_bid() -> None:
    m = market()
    m.pin("XAUUSD", 2650.0, 2650.3)
    ticket = m.trade("XAUUSD", "buy", 0.01, sl=2648.5).ticket
    m.pin("XAUUSD", 2648.0, 2648.3)  # through the stop
    assert m.positions() == []
    [closed] = m.history()
    assert (closed.ticket, closed.reason, closed.close_price) == (ticket, "sl", 2648.0)
    assert closed.profit == -2.3


def test_take_profit_triggers_for_a_sell_at_the_ask() -> None:
    m = market()
    m.pin("EURUSD", 1.08000, 1.08010)
    m.trade("EURUSD", "sell", 0.1, tp=1.07900)
    m.pin("EURUSD", 1.07885, 1.07895)
    m.step(T0 + 100)
    [closed] = m.history()
    assert (closed.reason, closed.close_price, closed.profit) == ("tp", 1.07895, 10.5)


def test_stops_do_not_trigger_before_the_price_reaches_them() -> None:
    m = market()
    m.pin("EURUSD", 1.08000, 1.08010)
    m.trade("EURUSD", "sell", 0.1, sl=1.08100, tp=1.07900)
    m.pin("EURUSD", 1.08080, 1.08090)  # ask below sl
    m.pin("EURUSD", 1.07895, 1.07901)  # ask above tp
    assert len(m.positions()) == 1


def test_account_is_stopped_out_when_equity_falls_below_half_the_margin() -> None:
    m = market(balance=300)
    m.pin("XAUUSD", 2650.0, 2650.3)
    m.trade("XAUUSD", "buy", 0.1)  # margin 265.03
    m.pin("XAUUSD", 2622.0, 2622.3)  # loss 283: equity 17 < 132.5
    [closed] = m.history()
    assert closed.reason == "stop_out"
    assert m.account().balance == 17.0


def test_history_is_oldest_first_and_filters_by_since() -> None:
    m = market()
    for i, symbol in enumerate(("XAUUSD", "EURUSD", "USDJPY")):
        ticket = m.trade(symbol, "buy", 0.01).ticket
        m.step(T0 + (i + 1) * 1000)
        m.close(ticket)
    assert [t.symbol for t in m.history()] == ["XAUUSD", "EURUSD", "USDJPY"]
    assert [t.symbol for t in m.history(since=T0 + 2000)] == ["EURUSD", "USDJPY"]
    assert m.history(since=T0 + 4000) == []


def test_reset_restores_the_initial_account_and_walk() -> None:
    m = market(balance=500, seed=5)
    fresh = [m.tick(s) for s in SYMBOLS]
    m.pin("XAUUSD", 2000.0, 2000.3)
    m.trade("XAUUSD", "buy", 0.01)
    m.close(m.trade("EURUSD", "sell", 0.01).ticket)
    m.step(T0 + 9000)
    m.reset(start_ms=T0)
    assert m.account().balance == 500.0
    assert (m.positions(), m.history(), m.orders_filled) == ([], [], 0)
    assert [m.tick(s) for s in SYMBOLS] == fresh
    assert m.trade("XAUUSD", "buy", 0.01).ticket == FIRST_TICKET + 2


def test_bad_construction_names_the_argument() -> None:
    with pytest.raises(ValueError, match="balance"):
        SimMarket(SYMBOLS, 0)
    with pytest.raises(ValueError, match="symbols"):
        SimMarket({}, 100)
    with pytest.raises(
        ValueError, match=r"symbols\.XAUUSD: its USD profits cannot be valued in EUR"
    ):
        SimMarket({"XAUUSD": SYMBOLS["XAUUSD"]}, 100, currency="EUR")
