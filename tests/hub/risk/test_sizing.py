"""Sizing a signal's order from the per-trade budget and its SL (``hub.risk.sizing``)."""

from __future__ import annotations

import pytest

from hub.bridge.models import Action, TradeOrder
from hub.config import SymbolSpec
from hub.risk import check_open, floor_to_step, size_for_signal
from tests.hub.risk.builders import NOVA, PRICES, agent, assert_denied, book, context


@pytest.mark.parametrize(
    ("lots", "step", "expected"),
    [(0.0199999, 0.01, 0.01), (0.02, 0.01, 0.02), (0.15384, 0.01, 0.15), (2.7, 0.5, 2.5)],
)
def test_floor_to_step_rounds_down(lots: float, step: float, expected: float) -> None:
    assert floor_to_step(lots, step) == expected


SIZING_CASES: list[tuple[str, str, str, Action, float, float, float]] = [
    # name, agent, symbol, action, sl, lots, risk
    ("budget buys exactly the minimum", "agent_1", "XAUUSD", "buy", 2648.30, 0.01, 2.0),
    ("rounded down to the lot step", "agent_3", "XAUUSD", "buy", 2649.00, 0.15, 19.5),
    ("sell sized from the bid", "agent_3", "XAUUSD", "sell", 2651.30, 0.15, 19.5),
    ("usdjpy converted", "agent_3", "USDJPY", "buy", 149.700, 0.1, 20.0),
]


@pytest.mark.parametrize(
    ("agent_id", "symbol", "action", "sl", "lots", "risk"),
    [c[1:] for c in SIZING_CASES],
    ids=[c[0] for c in SIZING_CASES],
)
def test_size_spends_the_per_trade_budget(
    agent_id: str, symbol: str, action: Action, sl: float, lots: float, risk: float
) -> None:
    decision = size_for_signal(context(), agent_id, symbol, action, sl)
    assert decision.allowed, decision.message
    assert (decision.lots, decision.risk) == (lots, risk)


def test_a_budget_below_the_minimum_lot_is_too_small() -> None:
    decision = size_for_signal(context(), "agent_1", "XAUUSD", "buy", 2640.30)
    assert_denied(decision, "too_small")
    # budget 2.00 / (100 x 10.00 per lot) = 0.002 lots
    assert decision.details() == {"check": "too_small", "limit": 0.01, "value": 0.002}


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
