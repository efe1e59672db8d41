"""Risk checks on changes to open positions (close, modify) and on sizing signals."""

from __future__ import annotations

import pytest

from hub.bridge.models import Action, Position, TradeOrder
from hub.config import SymbolSpec
from hub.risk import check_close, check_modify, check_open, floor_to_step, size_for_signal
from tests.hub.risk.test_checks import (
    ATLAS,
    NOVA,
    PRICES,
    agent,
    assert_denied,
    book,
    context,
    tick,
)

# agent_1 (balance 200, 1% = 2.00) holds a buy opened at 2650.30, SL 2648.50 (risk 1.80);
# the market is bid 2650.00 / ask 2650.30.
BUY = Position(
    ticket=1001,
    symbol="XAUUSD",
    action="buy",
    lots=0.01,
    open_price=2650.30,
    sl=2648.50,
    tp=2660.00,
)
SELL = Position(
    ticket=1002,
    symbol="XAUUSD",
    action="sell",
    lots=0.01,
    open_price=2650.00,
    sl=2651.50,
    tp=2640.00,
)

MODIFY_CASES: list[tuple[str, Position, float | None, float | None, str | None]] = [
    ("tighten buy sl", BUY, 2649.00, 2660.00, None),
    ("tp only", BUY, 2648.50, 2670.00, None),
    ("remove tp", BUY, 2648.50, 0.0, None),
    ("sl omitted keeps it", BUY, None, 2670.00, None),
    ("nothing given", BUY, None, None, None),
    ("widen buy sl to exactly the budget", BUY, 2648.30, 2660.00, None),
    ("widen buy sl a cent past the budget", BUY, 2648.29, 2660.00, "max_risk_per_trade"),
    ("remove sl (0) with require_sl", BUY, 0.0, None, "sl_required"),
    ("new buy sl at the bid", BUY, 2650.00, 2660.00, "sl_side"),
    ("new buy tp at the ask", BUY, 2648.50, 2650.30, "tp_side"),
    ("tighten sell sl", SELL, 2651.00, 2640.00, None),
    ("widen sell sl to exactly the budget", SELL, 2652.00, 2640.00, None),
    ("widen sell sl a cent past the budget", SELL, 2652.01, 2640.00, "max_risk_per_trade"),
    ("new sell sl at the ask", SELL, 2650.30, 2640.00, "sl_side"),
]


@pytest.mark.parametrize(
    ("pos", "sl", "tp", "check"), [c[1:] for c in MODIFY_CASES], ids=[c[0] for c in MODIFY_CASES]
)
def test_modify(pos: Position, sl: float | None, tp: float | None, check: str | None) -> None:
    ctx = context(("agent_1", book(ATLAS, 200, positions=[pos])))
    decision = check_modify(ctx, "agent_1", pos, sl=sl, tp=tp)
    if check is None:
        assert decision.allowed, decision.message
    else:
        assert_denied(decision, check)


def test_widening_reports_the_risk_from_the_open_price() -> None:
    ctx = context(("agent_1", book(ATLAS, 200, positions=[BUY])))
    over = check_modify(ctx, "agent_1", BUY, sl=2648.29, tp=BUY.tp)
    assert over.details() == {"check": "max_risk_per_trade", "limit": 2.0, "value": 2.01}
    at = check_modify(ctx, "agent_1", BUY, sl=2648.30, tp=BUY.tp)
    assert (at.risk, at.risk_pct) == (2.0, 1.0)


def test_tightening_beyond_entry_is_allowed() -> None:
    prices = {"XAUUSD": tick("XAUUSD", 2660.00, 2660.30)}
    ctx = context(("agent_1", book(ATLAS, 200, positions=[BUY])), prices=prices)
    assert check_modify(ctx, "agent_1", BUY, sl=2655.00, tp=BUY.tp).allowed


def test_adding_an_sl_to_a_position_without_one_is_allowed() -> None:
    bare = Position(ticket=5, symbol="XAUUSD", action="buy", lots=1.0, open_price=2650.0)
    ctx = context(("agent_1", book(ATLAS, 200, positions=[bare])))
    assert check_modify(ctx, "agent_1", bare, sl=2600.0, tp=None).allowed
    assert check_modify(ctx, "agent_1", bare, sl=None, tp=2700.0).allowed


def test_removing_the_sl_is_allowed_when_not_required() -> None:
    loose = agent(["XAUUSD"], per_trade=0.01, max_positions=1, require_sl=False)
    ctx = context(("a", book(loose, 200, positions=[BUY])))
    assert check_modify(ctx, "a", BUY, sl=0.0, tp=None).allowed


@pytest.mark.parametrize(("sl", "allowed"), [(2649.00, True), (2648.40, False)])
def test_emergency_stop_blocks_only_risk_adding_modifies(sl: float, allowed: bool) -> None:
    ctx = context(("agent_1", book(ATLAS, 200, positions=[BUY])), emergency=True)
    decision = check_modify(ctx, "agent_1", BUY, sl=sl, tp=BUY.tp)
    if allowed:
        assert decision.allowed, decision.message
    else:
        assert_denied(decision, "emergency_stop", code="emergency_stop")


def test_widening_without_a_price_is_denied() -> None:
    ctx = context(("agent_1", book(ATLAS, 200, positions=[BUY])), prices={})
    assert_denied(check_modify(ctx, "agent_1", BUY, sl=2648.40, tp=BUY.tp), "price")


def test_close_is_always_allowed() -> None:
    decision = check_close()
    assert decision.allowed and decision.code is None


# -- sizing signals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lots", "step", "expected"),
    [(0.0199999, 0.01, 0.01), (0.02, 0.01, 0.02), (0.15384, 0.01, 0.15), (2.7, 0.5, 2.5)],
)
def test_floor_to_step_rounds_down(lots: float, step: float, expected: float) -> None:
    assert floor_to_step(lots, step) == expected


SIZING_CASES: list[tuple[str, str, str, Action, float, float | None, float | None]] = [
    # name, agent, symbol, action, sl, lots, risk
    ("budget buys exactly the minimum", "agent_1", "XAUUSD", "buy", 2648.30, 0.01, 2.0),
    ("rounded down to the lot step", "agent_3", "XAUUSD", "buy", 2649.00, 0.15, 19.5),
    ("sell sized from the bid", "agent_3", "XAUUSD", "sell", 2651.30, 0.15, 19.5),
    ("usdjpy converted", "agent_3", "USDJPY", "buy", 149.700, 0.1, 20.0),
    ("budget below the minimum lot", "agent_1", "XAUUSD", "buy", 2640.30, None, None),
]


@pytest.mark.parametrize(
    ("agent_id", "symbol", "action", "sl", "lots", "risk"),
    [c[1:] for c in SIZING_CASES],
    ids=[c[0] for c in SIZING_CASES],
)
def test_size_for_signal(
    agent_id: str,
    symbol: str,
    action: Action,
    sl: float,
    lots: float | None,
    risk: float | None,
) -> None:
    decision = size_for_signal(context(), agent_id, symbol, action, sl)
    if lots is None:
        assert_denied(decision, "too_small")
        # budget 2.00 / (100 x 10.00 per lot) = 0.002 lots
        assert decision.details() == {"check": "too_small", "limit": 0.01, "value": 0.002}
    else:
        assert decision.allowed, decision.message
        assert (decision.lots, decision.risk) == (lots, risk)


def test_size_is_clipped_to_max_lots() -> None:
    whale = agent(["XAUUSD"], per_trade=1.0, max_positions=1)
    specs = {"XAUUSD": SymbolSpec(contract_size=100, digits=2, max_lots=5)}
    ctx = context(("w", book(whale, 1_000_000)), specs=specs)
    assert size_for_signal(ctx, "w", "XAUUSD", "buy", 2640.0).lots == 5


@pytest.mark.parametrize(("sl", "check"), [(None, "sl_required"), (2651.0, "sl_side")])
def test_size_needs_a_valid_sl(sl: float | None, check: str) -> None:
    assert_denied(size_for_signal(context(), "agent_3", "XAUUSD", "buy", sl), check)


def test_sized_order_passes_the_open_checks() -> None:
    ctx = context(("agent_3", book(NOVA, 1000)), prices=PRICES)
    sized = size_for_signal(ctx, "agent_3", "USDJPY", "sell", 150.450)
    assert sized.lots is not None
    trade = TradeOrder(symbol="USDJPY", action="sell", lots=sized.lots, sl=150.450)
    assert check_open(ctx, "agent_3", trade).risk == sized.risk
