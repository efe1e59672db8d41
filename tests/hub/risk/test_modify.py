"""Checks on changes to open positions (``hub.risk.modify``): closes, and modifies of the stops."""

from __future__ import annotations

import pytest

from hub.bridge.models import Position
from hub.risk import check_close, check_modify
from tests.hub.risk.builders import ATLAS, agent, assert_denied, assert_outcome, book, context, tick

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

Case = tuple[str, Position, float | None, float | None, str | None]


def cases(table: list[Case]) -> pytest.MarkDecorator:
    """``table`` as pytest parameters ``(pos, sl, tp, check)``, each named by its first column."""
    return pytest.mark.parametrize(
        ("pos", "sl", "tp", "check"), [c[1:] for c in table], ids=[c[0] for c in table]
    )


@cases(
    [
        ("tighten buy sl", BUY, 2649.00, 2660.00, None),
        ("tp only", BUY, 2648.50, 2670.00, None),
        ("remove tp", BUY, 2648.50, 0.0, None),
        ("sl omitted keeps it", BUY, None, 2670.00, None),
        ("nothing given", BUY, None, None, None),
        ("tighten sell sl", SELL, 2651.00, 2640.00, None),
    ]
)
def test_a_modify_that_adds_no_risk_is_allowed(
    pos: Position, sl: float | None, tp: float | None, check: str | None
) -> None:
    ctx = context(("agent_1", book(ATLAS, 200, positions=[pos])))
    assert_outcome(check_modify(ctx, "agent_1", pos, sl=sl, tp=tp), check)


@cases(
    [
        ("widen buy sl to exactly the budget", BUY, 2648.30, 2660.00, None),
        ("widen buy sl a cent past the budget", BUY, 2648.29, 2660.00, "max_risk_per_trade"),
        ("widen sell sl to exactly the budget", SELL, 2652.00, 2640.00, None),
        ("widen sell sl a cent past the budget", SELL, 2652.01, 2640.00, "max_risk_per_trade"),
    ]
)
def test_a_wider_sl_must_fit_the_per_trade_budget(
    pos: Position, sl: float | None, tp: float | None, check: str | None
) -> None:
    ctx = context(("agent_1", book(ATLAS, 200, positions=[pos])))
    assert_outcome(check_modify(ctx, "agent_1", pos, sl=sl, tp=tp), check)


@cases(
    [
        ("new buy sl at the bid", BUY, 2650.00, 2660.00, "sl_side"),
        ("new buy tp at the ask", BUY, 2648.50, 2650.30, "tp_side"),
        ("new sell sl at the ask", SELL, 2650.30, 2640.00, "sl_side"),
    ]
)
def test_new_levels_must_be_on_their_side_of_the_price(
    pos: Position, sl: float | None, tp: float | None, check: str | None
) -> None:
    ctx = context(("agent_1", book(ATLAS, 200, positions=[pos])))
    assert_outcome(check_modify(ctx, "agent_1", pos, sl=sl, tp=tp), check)


def test_removing_the_sl_is_denied_when_required() -> None:
    ctx = context(("agent_1", book(ATLAS, 200, positions=[BUY])))
    assert_denied(check_modify(ctx, "agent_1", BUY, sl=0.0, tp=None), "sl_required")


def test_removing_the_sl_is_allowed_when_not_required() -> None:
    loose = agent(["XAUUSD"], per_trade=0.01, max_positions=1, require_sl=False)
    ctx = context(("a", book(loose, 200, positions=[BUY])))
    assert check_modify(ctx, "a", BUY, sl=0.0, tp=None).allowed


def test_widening_past_the_budget_reports_the_risk_from_the_open_price() -> None:
    ctx = context(("agent_1", book(ATLAS, 200, positions=[BUY])))
    over = check_modify(ctx, "agent_1", BUY, sl=2648.29, tp=BUY.tp)
    assert over.details() == {"check": "max_risk_per_trade", "limit": 2.0, "value": 2.01}


def test_widening_within_the_budget_reports_its_risk_and_percent() -> None:
    ctx = context(("agent_1", book(ATLAS, 200, positions=[BUY])))
    at = check_modify(ctx, "agent_1", BUY, sl=2648.30, tp=BUY.tp)
    assert (at.risk, at.risk_pct) == (2.0, 1.0)


def test_tightening_beyond_entry_is_allowed() -> None:
    prices = {"XAUUSD": tick("XAUUSD", 2660.00, 2660.30)}
    ctx = context(("agent_1", book(ATLAS, 200, positions=[BUY])), prices=prices)
    assert check_modify(ctx, "agent_1", BUY, sl=2655.00, tp=BUY.tp).allowed


BARE = Position(ticket=5, symbol="XAUUSD", action="buy", lots=1.0, open_price=2650.0)


def test_adding_an_sl_to_a_position_without_one_is_allowed() -> None:
    ctx = context(("agent_1", book(ATLAS, 200, positions=[BARE])))
    assert check_modify(ctx, "agent_1", BARE, sl=2600.0, tp=None).allowed


def test_setting_a_tp_on_a_position_without_an_sl_is_allowed() -> None:
    ctx = context(("agent_1", book(ATLAS, 200, positions=[BARE])))
    assert check_modify(ctx, "agent_1", BARE, sl=None, tp=2700.0).allowed


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
