"""Checks on changes to open positions (``hub.risk.modify``): closes, and modifies of the stops."""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

import pytest

from hub.bridge.models import Position, Tick
from hub.risk import MODIFY_CHECKS, RiskDecision, check_close, check_modify
from tests.hub.risk.builders import (
    ATLAS,
    agent,
    assert_denied,
    assert_outcome,
    book,
    context,
    pending,
    position,
    tick,
)

# agent_1 (balance 200, 1% = 2.00 a trade, 5% = 10.00 a day) holds a buy opened at
# 2650.30, SL 2648.50: it risks 1.50 more from the bid. The market is bid 2650.00 / ask
# 2650.30; a sell's SL risks from the ask.
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
        ("widen buy sl to exactly the budget from the bid", BUY, 2648.00, 2660.00, None),
        ("widen buy sl a cent past the budget", BUY, 2647.99, 2660.00, "max_risk_per_trade"),
        ("widen buy sl: 2.01 from the open price, 1.71 from the bid", BUY, 2648.29, None, None),
        ("widen sell sl to exactly the budget from the ask", SELL, 2652.30, 2640.00, None),
        ("widen sell sl a cent past the budget", SELL, 2652.31, 2640.00, "max_risk_per_trade"),
    ]
)
def test_a_wider_sl_must_fit_the_per_trade_budget_from_the_current_price(
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


LOOSE = agent(["XAUUSD"], per_trade=0.01, max_positions=1, require_sl=False)


@pytest.mark.parametrize(
    ("equity", "halted", "check"),
    [
        pytest.param(200, False, None, id="counted at the budget 2.00"),
        pytest.param(192, False, None, id="lost 8 + the budget 2.00: at the daily limit"),
        pytest.param(192.01, True, "daily_loss", id="halted"),
        pytest.param(191.99, False, "daily_loss", id="lost 8.01 + 2.00: over the daily limit"),
    ],
)
def test_removing_the_sl_when_not_required_counts_the_budget(
    equity: float, halted: bool, check: str | None
) -> None:
    ctx = context(("a", book(LOOSE, 200, equity=equity, positions=[BUY], halted=halted)))
    decision = check_modify(ctx, "a", BUY, sl=0.0, tp=None)
    assert_outcome(decision, check)
    if check is None:
        assert decision.risk == 2.0


def test_widening_past_the_budget_reports_the_risk_from_the_current_price() -> None:
    ctx = context(("agent_1", book(ATLAS, 200, positions=[BUY])))
    over = check_modify(ctx, "agent_1", BUY, sl=2647.99, tp=BUY.tp)
    assert over.details() == {"check": "max_risk_per_trade", "limit": 2.0, "value": 2.01}


def test_widening_within_the_budget_reports_its_risk_and_percent() -> None:
    ctx = context(("agent_1", book(ATLAS, 200, positions=[BUY])))
    at = check_modify(ctx, "agent_1", BUY, sl=2648.00, tp=BUY.tp)
    assert (at.risk, at.risk_pct) == (2.0, 1.0)


def test_a_breach_never_reads_as_equal_to_its_limit() -> None:
    """Balance 179.70 x 1% = 1.797: widening to a 1.80 risk is over it, and must read so."""
    ctx = context(("agent_1", book(ATLAS, 179.70, positions=[BUY])))
    over = check_modify(ctx, "agent_1", BUY, sl=2648.20, tp=None)
    assert over.details() == {"check": "max_risk_per_trade", "limit": 1.79, "value": 1.8}
    assert "risks 1.80 USD, above the per-trade limit 1.79 USD" in over.message


# -- widening under the daily loss limit and the total exposure -----------------------------


@pytest.mark.parametrize(
    ("equity", "halted", "sl", "tp", "check"),
    [
        pytest.param(200, True, 2648.40, None, "daily_loss", id="durable halt refuses widening"),
        pytest.param(190, False, 2648.40, None, "daily_loss", id="loss at the limit refuses"),
        pytest.param(200, True, 2649.00, None, None, id="durable halt allows tightening"),
        pytest.param(200, True, None, 2670.00, None, id="durable halt allows a tp change"),
    ],
)
def test_no_sl_is_widened_while_halted(
    equity: float, halted: bool, sl: float | None, tp: float | None, check: str | None
) -> None:
    ctx = context(("agent_1", book(ATLAS, 200, equity=equity, positions=[BUY], halted=halted)))
    assert_outcome(check_modify(ctx, "agent_1", BUY, sl=sl, tp=tp), check)


# An agent with a 4.00 budget a trade, so the daily limit (10.00) is the one that binds.
WIDE = agent(["XAUUSD"], per_trade=0.02, max_positions=3)
OTHER_BUY = position("XAUUSD", "buy", 0.01, 2650.30, 2649.00, ticket=2)  # 1.00 from the bid
FLYING_1 = pending("XAUUSD", "buy", 0.01, 2649.30, 2650.30)  # 1.00 from its entry


@pytest.mark.parametrize(
    ("equity", "others", "flying", "sl", "value"),
    [
        pytest.param(192, [], [], 2648.00, None, id="lost 8 + 2.00 at the new sl: at the limit"),
        pytest.param(192, [], [], 2647.99, 10.01, id="lost 8 + 2.01: a cent over"),
        pytest.param(193, [], [FLYING_1], 2648.00, None, id="lost 7 + 1.00 in flight + 2.00"),
        pytest.param(193, [], [FLYING_1], 2647.99, 10.01, id="lost 7 + 1.00 in flight + 2.01"),
        pytest.param(193, [OTHER_BUY], [], 2648.00, None, id="lost 7 + 1.00 open + 2.00"),
        pytest.param(193, [OTHER_BUY], [], 2647.99, 10.01, id="lost 7 + 1.00 open + 2.01"),
    ],
)
def test_a_wider_sl_must_fit_the_daily_headroom(
    equity: float, others: list[Position], flying: list[Any], sl: float, value: float | None
) -> None:
    agent_book = book(WIDE, 200, equity=equity, positions=[BUY, *others], pending=flying)
    decision = check_modify(context(("a", agent_book)), "a", BUY, sl=sl, tp=None)
    if value is None:
        assert decision.allowed, decision.message
    else:
        assert_denied(decision, "daily_loss")
        assert decision.details() == {"check": "daily_loss", "limit": 10.0, "value": value}


def test_the_position_is_counted_at_its_new_sl_even_when_missing_from_the_book() -> None:
    """The service may find a ticket on the bridge that its last poll did not show yet."""
    ctx = context(("a", book(WIDE, 200, equity=192)))
    assert_denied(check_modify(ctx, "a", BUY, sl=2647.99, tp=None), "daily_loss")


# Two agents of equity 10 each: total exposure limit 10% x 20 = 2.00. "a" holds BUY (1.50).
SMALL = agent(["XAUUSD"], per_trade=1.0, max_positions=3, daily=1.0)


@pytest.mark.parametrize(
    ("b_sl", "sl", "value"),
    [
        pytest.param(2649.51, 2648.49, None, id="1.51 + 0.49 in b: at the limit"),
        pytest.param(2649.50, 2648.49, 2.01, id="1.51 + 0.50 in b: a cent over"),
    ],
)
def test_a_wider_sl_must_fit_the_total_exposure_of_every_agent(
    b_sl: float, sl: float, value: float | None
) -> None:
    held_by_b = position("XAUUSD", "buy", 0.01, 2650.30, b_sl, ticket=9)
    ctx = context(
        ("a", book(SMALL, 10, positions=[BUY])), ("b", book(SMALL, 10, positions=[held_by_b]))
    )
    decision = check_modify(ctx, "a", BUY, sl=sl, tp=None)
    if value is None:
        assert decision.allowed, decision.message
    else:
        assert_denied(decision, "max_total_exposure")
        assert decision.details() == {"check": "max_total_exposure", "limit": 2.0, "value": value}


def test_no_stop_is_widened_while_an_agents_open_risk_is_unknown() -> None:
    """b's bridge answered a ``/positions`` row the hub could not read: the total exposure
    is unknown, so a's wider stop is refused by it; tightening is still allowed."""
    ctx = context(("a", book(SMALL, 10, positions=[BUY])), ("b", book(SMALL, 10, unreadable=2)))
    decision = check_modify(ctx, "a", BUY, sl=2648.49, tp=None)
    assert_denied(decision, "max_total_exposure")
    assert decision.value is None and "(b: 2)" in decision.message
    assert check_modify(ctx, "a", BUY, sl=2648.51, tp=None).allowed


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


# -- the order of the modify checks, pair by pair -------------------------------------------

DOCUMENTED_MODIFY_ORDER = (
    "sl_side",
    "tp_side",
    "emergency_stop",
    "enabled",
    "sl_required",
    "daily_loss",  # halted
    "price",
    "max_risk_per_trade",
    "daily_loss",  # headroom
    "max_total_exposure",
)


@dataclass(frozen=True)
class ModSetup:
    """Agent ``a`` (balance 1000: 10.00 a trade, 50.00 a day) moves BUY's SL to ``sl``;
    agent ``b`` (equity 1000) holds ``other``. The defaults pass every check: widening to
    2645.00 risks 5.00 from the bid."""

    sl: float | None = 2645.00
    tp: float | None = None
    emergency: bool = False
    enabled: bool = True
    require_sl: bool = True
    halted: bool = False
    prices: dict[str, Tick] | None = None  # None: PRICES
    equity: float = 1000.0
    other: Position | None = None

    def decide(self) -> RiskDecision:
        config = agent(
            ["XAUUSD"],
            per_trade=0.01,
            max_positions=2,
            enabled=self.enabled,
            require_sl=self.require_sl,
        )
        a = book(config, 1000, equity=self.equity, start=1000, positions=[BUY], halted=self.halted)
        b = book(config, 1000, positions=[self.other] if self.other else [])
        ctx = context(("a", a), ("b", b), prices=self.prices, emergency=self.emergency)
        return check_modify(ctx, "a", BUY, sl=self.sl, tp=self.tp)


GOLD_BIG = position("XAUUSD", "buy", 1.0, 2650.0, 2600.0, ticket=9)  # b risks 5000

# For each check but the last: a setup in which it and the next both deny, and the change
# that lifts its own denial only (so the next one shows).
MODIFY_BOTH_DENY: list[tuple[ModSetup, dict[str, Any]]] = [
    (ModSetup(sl=2650.00, tp=2650.30), {"sl": 2645.00}),  # sl_side, tp_side
    (ModSetup(tp=2650.30, emergency=True), {"tp": None}),  # tp_side, emergency_stop
    (ModSetup(emergency=True, enabled=False), {"emergency": False}),  # emergency, enabled
    (ModSetup(enabled=False, sl=0.0), {"enabled": True}),  # enabled, sl_required
    (ModSetup(sl=0.0, halted=True), {"require_sl": False}),  # sl_required, daily_loss
    (ModSetup(halted=True, prices={}), {"halted": False}),  # daily_loss (halted), price
    (ModSetup(prices={}, sl=2600.00), {"prices": None}),  # price, max_risk_per_trade
    (ModSetup(sl=2600.00, equity=954.0), {"sl": 2645.00}),  # max_risk, daily_loss (headroom)
    (ModSetup(equity=954.0, other=GOLD_BIG), {"equity": 1000.0}),  # headroom, exposure
]
MODIFY_PAIRS = [
    (first, second, *MODIFY_BOTH_DENY[i])
    for i, (first, second) in enumerate(pairwise(DOCUMENTED_MODIFY_ORDER))
]


def test_the_modify_setup_passes_every_check() -> None:
    decision = ModSetup().decide()
    assert decision.allowed, decision.message


@pytest.mark.parametrize(
    ("first", "second", "setup", "lift"),
    MODIFY_PAIRS,
    ids=[f"{a} before {b}" for a, b, *_ in MODIFY_PAIRS],
)
def test_each_modify_check_denies_before_the_next_one_in_the_documented_order(
    first: str, second: str, setup: ModSetup, lift: dict[str, Any]
) -> None:
    assert setup.decide().check == first
    assert replace(setup, **lift).decide().check == second  # the second was denying too


def test_the_halt_is_checked_before_the_headroom() -> None:
    assert "halted" in ModSetup(halted=True).decide().message
    assert "halted" not in ModSetup(equity=954.0).decide().message


def test_modify_checks_names_the_modify_pipeline_in_its_documented_order() -> None:
    assert MODIFY_CHECKS == DOCUMENTED_MODIFY_ORDER
