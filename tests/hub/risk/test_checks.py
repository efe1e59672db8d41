"""New positions through the pipeline (``hub.risk.checks``): every check at its boundary."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

import msgspec
import pytest

from hub.bridge.models import Action, Position, Tick, TradeOrder
from hub.config import AgentConfig, SymbolSpec
from hub.risk import (
    OPEN_CHECKS,
    CorrelationLookup,
    ReturnsWindow,
    RiskContext,
    RiskDecision,
    check_open,
)
from tests.hub.risk.builders import (
    ATLAS,
    NOVA,
    PRICES,
    agent,
    assert_denied,
    assert_outcome,
    book,
    context,
    feed,
    order,
    pending,
    position,
    tick,
    walks,
)

# -- the worked example (docs/risk.md) ------------------------------------------------


def test_worked_example_rejects_with_spec_details() -> None:
    decision = check_open(context(), "agent_1", order("XAUUSD", "buy", 0.01, 2640.00))
    assert_denied(decision, "max_risk_per_trade")
    assert decision.details() == {"check": "max_risk_per_trade", "limit": 2.0, "value": 10.3}
    assert "10.30" in decision.message and "2.00" in decision.message


def test_worked_example_with_a_tight_sl_is_accepted_with_its_risk() -> None:
    decision = check_open(context(), "agent_1", order("XAUUSD", "buy", 0.01, 2648.50))
    assert decision.allowed, decision.message
    assert (decision.code, decision.risk, decision.risk_pct) == (None, 1.8, 0.9)


# -- lots and stops, each check at its boundary -------------------------------------------

# A large agent whose risk limits stay out of the way of the lot and side checks.
WHALE = agent(["XAUUSD"], per_trade=1.0, max_positions=5, daily=1.0)
WHALE_CTX = context(("whale", book(WHALE, 10_000_000)))

Case = tuple[str, TradeOrder, str | None]


def cases(table: list[Case]) -> pytest.MarkDecorator:
    """``table`` as pytest parameters ``(trade, check)``, each named by its first column."""
    return pytest.mark.parametrize(
        ("trade", "check"), [c[1:] for c in table], ids=[c[0] for c in table]
    )


@cases(
    [
        ("lots zero", order("XAUUSD", "buy", 0.0, 2640.0), "lots"),
        ("lots negative", order("XAUUSD", "buy", -0.01, 2640.0), "lots"),
        ("lots nan", order("XAUUSD", "buy", math.nan, 2640.0), "lots"),
    ]
)
def test_lots_must_be_a_positive_number(trade: TradeOrder, check: str | None) -> None:
    assert_outcome(check_open(WHALE_CTX, "whale", trade), check)


@cases(
    [
        ("lots off step", order("XAUUSD", "buy", 0.015, 2640.0), "lot_step"),
        ("lots on step despite float noise", order("XAUUSD", "buy", 0.07, 2640.0), None),
    ]
)
def test_lots_must_be_a_multiple_of_the_lot_step(trade: TradeOrder, check: str | None) -> None:
    assert_outcome(check_open(WHALE_CTX, "whale", trade), check)


@pytest.mark.parametrize(
    ("lots", "sent", "check"),
    [
        (0.0100000001, 0.01, None),  # float noise from a client: sent as 0.01
        (0.0099999999, 0.01, None),
        (0.07, 0.07, None),  # 0.07 / 0.01 = 7.000000000000001
        (0.0100000099, 0.01, None),  # 0.99e-6 of a step off: snapped
        (0.0100000101, None, "lot_step"),  # 1.01e-6 of a step off: refused as sent
        (50.0000000001, 50.0, None),  # max_lots 50 sees the normalised lots
    ],
)
def test_lots_are_normalised_to_the_step_and_the_decision_carries_them(
    lots: float, sent: float | None, check: str | None
) -> None:
    decision = check_open(WHALE_CTX, "whale", order("XAUUSD", "buy", lots, 2640.0))
    assert_outcome(decision, check)
    assert decision.lots == sent
    if check is not None:
        assert decision.details() == {"check": "lot_step", "limit": 0.01, "value": lots}


def test_the_risk_is_computed_on_the_normalised_lots() -> None:
    decision = check_open(context(), "agent_1", order("XAUUSD", "buy", 0.0100000001, 2648.50))
    assert (decision.allowed, decision.lots, decision.risk) == (True, 0.01, 1.8)


@pytest.mark.parametrize(("lots", "check"), [(0.02, None), (0.01, "min_lots")])
def test_min_lots_boundary(lots: float, check: str | None) -> None:
    specs = {"XAUUSD": SymbolSpec(contract_size=100, digits=2, min_lots=0.02)}
    decision = check_open(
        context(("whale", book(WHALE, 10_000_000)), specs=specs),
        "whale",
        order("XAUUSD", "buy", lots, 2640.0),
    )
    assert_outcome(decision, check)
    if check is not None:
        assert decision.details() == {"check": "min_lots", "limit": 0.02, "value": 0.01}


@cases(
    [
        ("lots at max", order("XAUUSD", "buy", 50.0, 2640.0), None),
        ("lots a step over max", order("XAUUSD", "buy", 50.01, 2640.0), "max_lots"),
    ]
)
def test_max_lots_boundary(trade: TradeOrder, check: str | None) -> None:
    assert_outcome(check_open(WHALE_CTX, "whale", trade), check)


@cases(
    [
        ("no sl", order("XAUUSD", "buy", 0.01, None), "sl_required"),
        ("sl 0 means none (MT4)", order("XAUUSD", "buy", 0.01, 0.0), "sl_required"),
    ]
)
def test_sl_is_required(trade: TradeOrder, check: str | None) -> None:
    assert_outcome(check_open(WHALE_CTX, "whale", trade), check)


def test_sl_not_required_when_the_agent_opts_out() -> None:
    loose = agent(["XAUUSD"], per_trade=0.01, max_positions=1, require_sl=False)
    decision = check_open(context(("a", book(loose, 200))), "a", order("XAUUSD", "buy", 0.01, None))
    assert decision.allowed, decision.message
    assert decision.risk == 2.0  # a trade without SL counts its whole per-trade budget


@cases(
    [
        ("buy sl a point below bid", order("XAUUSD", "buy", 0.01, 2649.99), None),
        ("buy sl at bid", order("XAUUSD", "buy", 0.01, 2650.00), "sl_side"),
        ("buy sl above bid", order("XAUUSD", "buy", 0.01, 2660.00), "sl_side"),
        ("sell sl a point above ask", order("XAUUSD", "sell", 0.01, 2650.31), None),
        ("sell sl at ask", order("XAUUSD", "sell", 0.01, 2650.30), "sl_side"),
    ]
)
def test_sl_must_be_beyond_the_exit_price(trade: TradeOrder, check: str | None) -> None:
    assert_outcome(check_open(WHALE_CTX, "whale", trade), check)


@cases(
    [
        ("buy tp a point above ask", order("XAUUSD", "buy", 0.01, 2640.0, 2650.31), None),
        ("buy tp at ask", order("XAUUSD", "buy", 0.01, 2640.0, 2650.30), "tp_side"),
        ("sell tp a point below bid", order("XAUUSD", "sell", 0.01, 2660.0, 2649.99), None),
        ("sell tp at bid", order("XAUUSD", "sell", 0.01, 2660.0, 2650.00), "tp_side"),
        ("tp 0 means none", order("XAUUSD", "sell", 0.01, 2660.0, 0.0), None),
    ]
)
def test_tp_must_be_beyond_the_entry_price(trade: TradeOrder, check: str | None) -> None:
    assert_outcome(check_open(WHALE_CTX, "whale", trade), check)


# -- max_risk_per_trade, in the account currency ------------------------------------------


@pytest.mark.parametrize(
    ("action", "sl", "value"),
    [
        ("buy", 2648.30, None),  # 0.01 x 100 x 2.00 = 2.00: exactly at the limit
        ("buy", 2648.29, 2.01),  # a cent over
        ("sell", 2652.00, None),  # sell enters at the bid 2650.00
        ("sell", 2652.01, 2.01),
    ],
)
def test_max_risk_per_trade_boundary(action: Action, sl: float, value: float | None) -> None:
    decision = check_open(context(), "agent_1", order("XAUUSD", action, 0.01, sl))
    if value is None:
        assert decision.allowed, decision.message
        assert decision.risk == 2.0
    else:
        assert_denied(decision, "max_risk_per_trade")
        assert decision.details() == {"check": "max_risk_per_trade", "limit": 2.0, "value": value}


def test_a_breach_never_reads_as_equal_to_its_limit() -> None:
    """Balance 179.70 x 1% = 1.797: a 1.80 risk is over it, and must read so."""
    decision = check_open(
        context(("agent_1", book(ATLAS, 179.70))), "agent_1", order("XAUUSD", "buy", 0.01, 2648.50)
    )
    assert_denied(decision, "max_risk_per_trade")
    assert "risks 1.80 USD, above the per-trade limit 1.79 USD" in decision.message
    assert decision.details() == {"check": "max_risk_per_trade", "limit": 1.79, "value": 1.8}


def test_usdjpy_risk_is_converted_to_usd_with_the_current_price() -> None:
    # 0.1 x 100000 x 0.300 = 3000 JPY at USDJPY 150 = 20.00 USD = 2% of 1000: at the limit.
    ctx = context()
    assert check_open(ctx, "agent_3", order("USDJPY", "buy", 0.1, 149.700)).risk == 20.0
    over = check_open(ctx, "agent_3", order("USDJPY", "buy", 0.1, 149.699))
    assert_denied(over, "max_risk_per_trade")
    assert over.details() == {"check": "max_risk_per_trade", "limit": 20.0, "value": 20.07}


def test_usdjpy_conversion_uses_the_mid_price() -> None:
    prices = {**PRICES, "USDJPY": tick("USDJPY", 149.990, 150.010)}
    # buy at the ask 150.010, 0.300 to the SL = 3000 JPY; / mid 150.000 = 20.00 USD
    decision = check_open(context(prices=prices), "agent_3", order("USDJPY", "buy", 0.1, 149.710))
    assert decision.allowed, decision.message
    assert decision.risk == 20.0


EURJPY_PRICES = {**PRICES, "EURJPY": tick("EURJPY", 162.000, 162.000)}
EURJPY_TRADE = order("EURJPY", "buy", 0.1, 161.700)  # 3000 JPY


def test_cross_quote_risk_converts_through_the_usd_pair() -> None:
    assert check_open(context(prices=EURJPY_PRICES), "agent_3", EURJPY_TRADE).risk == 20.0


def test_cross_quote_without_the_usd_pair_is_denied_by_the_price_check() -> None:
    prices = {k: v for k, v in EURJPY_PRICES.items() if k != "USDJPY"}
    assert_denied(check_open(context(prices=prices), "agent_3", EURJPY_TRADE), "price")


def test_no_current_price_is_denied_by_the_price_check() -> None:
    decision = check_open(context(prices={}), "agent_1", order("XAUUSD", "buy", 0.01, 2649.0))
    assert_denied(decision, "price")
    assert "XAUUSD" in decision.message


# -- positions, daily loss, exposure, correlation -----------------------------------------


@pytest.mark.parametrize(
    ("held", "in_flight", "config", "check"),
    [
        (0, 0, ATLAS, None),
        (1, 0, ATLAS, "max_positions"),
        (0, 1, ATLAS, "max_positions"),
        (2, 0, NOVA, None),  # the third of 3
        (2, 1, NOVA, "max_positions"),
    ],
)
def test_max_positions_counts_open_and_in_flight(
    held: int, in_flight: int, config: AgentConfig, check: str | None
) -> None:
    positions = [position("XAUUSD", "buy", 0.01, 2650.0, 2649.0, ticket=i) for i in range(held)]
    flying = [pending("XAUUSD", "buy", 0.01, 2649.0, 2650.30)] * in_flight
    ctx = context(("a", book(config, 200, positions=positions, pending=flying)))
    decision = check_open(ctx, "a", order("XAUUSD", "buy", 0.01, 2649.0))
    assert_outcome(decision, check)
    if check is not None:
        limit = config.risk.max_positions
        assert decision.details() == {"check": check, "limit": limit, "value": limit + 1}


# Start of day 1000, 5%: the daily limit is 50.00.


@pytest.mark.parametrize(
    ("equity", "value"),
    [
        (950.00, 50.0),  # 50 lost: halted
        (949.00, 51.0),
    ],
)
def test_daily_loss_halts_the_agent_once_the_limit_is_lost(equity: float, value: float) -> None:
    ctx = context(("agent_3", book(NOVA, 1000, equity=equity, start=1000)))
    decision = check_open(ctx, "agent_3", order("XAUUSD", "buy", 0.01, 2649.30))
    assert_denied(decision, "daily_loss")
    assert decision.details() == {"check": "daily_loss", "limit": 50.0, "value": value}


@pytest.mark.parametrize(
    ("sl", "value"),
    [
        # Equity 965 -> 35 used, 15 left: a 15.00 risk fits, 15.01 does not.
        (2635.30, None),
        (2635.29, 50.01),
    ],
)
def test_daily_loss_limits_the_new_trades_risk(sl: float, value: float | None) -> None:
    ctx = context(("agent_3", book(NOVA, 1000, equity=965.00, start=1000)))
    decision = check_open(ctx, "agent_3", order("XAUUSD", "buy", 0.01, sl))
    if value is None:
        assert decision.allowed, decision.message
    else:
        assert_denied(decision, "daily_loss")
        assert decision.details() == {"check": "daily_loss", "limit": 50.0, "value": value}


def test_a_durable_halt_refuses_even_when_equity_recovered() -> None:
    ctx = context(("agent_3", book(NOVA, 1000, equity=1010, start=1000, halted=True)))
    decision = check_open(ctx, "agent_3", order("XAUUSD", "buy", 0.01, 2649.30))
    assert_denied(decision, "daily_loss")
    assert decision.details() == {"check": "daily_loss", "limit": 50.0, "value": 0.0}
    assert "halted until 00:00 UTC" in decision.message


# Each of these opens (or reserves) 0.15 lot XAUUSD risking 19.50: from the bid 2650.00 to
# 2648.70 once open, from the ask 2650.30 to 2649.00 while in flight.
OPEN_19_50 = position("XAUUSD", "buy", 0.15, 2650.30, 2648.70)
FLYING_19_50 = pending("XAUUSD", "buy", 0.15, 2649.00, 2650.30)

NEW_19_50 = order("XAUUSD", "buy", 0.15, 2649.00)  # from the ask 2650.30: 19.50


def gold(sl: float) -> TradeOrder:
    """0.01 lot XAUUSD from the ask 2650.30: risks 2650.30 - sl."""
    return order("XAUUSD", "buy", 0.01, sl)


HEADROOM_CASES: list[tuple[str, float, list[Position], int, TradeOrder, float | None]] = [
    # name, equity (start 1000, limit 50), open, orders in flight, new order, denied value
    ("review: third 19.50 after two open", 1000, [OPEN_19_50] * 2, 0, NEW_19_50, 58.5),
    ("third 19.50 after two in flight", 1000, [], 2, NEW_19_50, 58.5),
    ("third 19.50 after one open, one in flight", 1000, [OPEN_19_50], 1, NEW_19_50, 58.5),
    ("39.00 open + 11.00: exactly at the limit", 1000, [OPEN_19_50] * 2, 0, gold(2639.30), None),
    ("39.00 open + 11.01: a cent over", 1000, [OPEN_19_50] * 2, 0, gold(2639.29), 50.01),
    ("lost 10 + 19.50 open + 19.50 in flight + 1.00", 990, [OPEN_19_50], 1, gold(2649.30), None),
    ("lost 10 + 19.50 open + 19.50 in flight + 1.01", 990, [OPEN_19_50], 1, gold(2649.29), 50.01),
    ("a winning day adds no headroom", 1100, [OPEN_19_50] * 2, 0, gold(2639.29), 50.01),
]


@pytest.mark.parametrize(
    ("equity", "held", "flying", "trade", "value"),
    [c[1:] for c in HEADROOM_CASES],
    ids=[c[0] for c in HEADROOM_CASES],
)
def test_daily_loss_counts_loss_open_and_pending_risk_and_this_trade(
    equity: float, held: list[Position], flying: int, trade: TradeOrder, value: float | None
) -> None:
    positions = [msgspec.structs.replace(p, ticket=i) for i, p in enumerate(held)]
    agent_book = book(
        NOVA, 1000, equity=equity, start=1000, positions=positions, pending=[FLYING_19_50] * flying
    )
    decision = check_open(context(("agent_3", agent_book)), "agent_3", trade)
    if value is None:
        assert decision.allowed, decision.message
    else:
        assert_denied(decision, "daily_loss")
        assert decision.details() == {"check": "daily_loss", "limit": 50.0, "value": value}


def test_daily_loss_shows_a_floored_limit_and_a_ceiled_total() -> None:
    """Start 1000.10 x 5% = 50.005; lost 35.00, a 15.01 risk makes 50.01: refused, and
    shown as 50.01 above 50.00 (rounding would show 50.01 against 50.01)."""
    ctx = context(("agent_3", book(NOVA, 1000, equity=965.10, start=1000.10)))
    assert check_open(ctx, "agent_3", order("XAUUSD", "buy", 0.01, 2635.30)).allowed
    decision = check_open(ctx, "agent_3", order("XAUUSD", "buy", 0.01, 2635.29))
    assert decision.details() == {"check": "daily_loss", "limit": 50.0, "value": 50.01}


def test_halted_message_says_halted() -> None:
    ctx = context(("agent_3", book(NOVA, 1000, equity=950, start=1000)))
    decision = check_open(ctx, "agent_3", order("XAUUSD", "buy", 0.01, 2649.30))
    assert "halted" in decision.message


# agent_1 (equity 200) holds 0.1 lot XAUUSD risking 100 from the bid 2650.00 to its SL 2640.00;
# agent_3 (equity 1000, 5% per trade) adds to it. Total equity 1200 x 10% = 120.
BIG_NOVA = agent(["XAUUSD", "EURUSD"], per_trade=0.05, max_positions=3)


@pytest.mark.parametrize(
    ("held_sl", "new_sl", "value"),
    [
        (2640.00, 2630.30, None),  # 100 + 20.00 = 120: at the limit
        (2640.00, 2630.29, 120.01),  # 100 + 20.01
        (2639.99, 2630.30, 120.1),  # 100.10 + 20.00
        (None, 2630.30, None),  # no SL: counts agent_1's budget 2.00
        (2655.00, 2630.30, None),  # an SL in profit risks nothing more
    ],
)
def test_total_exposure_sums_open_risk_across_agents(
    held_sl: float | None, new_sl: float, value: float | None
) -> None:
    loose = agent(["XAUUSD"], per_trade=0.01, max_positions=1, require_sl=False)
    held = position("XAUUSD", "buy", 0.1, 2645.0, held_sl)
    ctx = context(
        ("agent_1", book(loose, 200, positions=[held])), ("agent_3", book(BIG_NOVA, 1000))
    )
    decision = check_open(ctx, "agent_3", order("XAUUSD", "buy", 0.01, new_sl))
    if value is None:
        assert decision.allowed, decision.message
    else:
        assert_denied(decision, "max_total_exposure")
        assert decision.details() == {"check": "max_total_exposure", "limit": 120.0, "value": value}


@pytest.mark.parametrize(
    ("new_sl", "value"),
    [
        (2630.30, None),  # 100.00 in flight for agent_1 + 20.00 = 120: at the limit
        (2630.29, 120.01),
    ],
)
def test_total_exposure_counts_other_agents_orders_in_flight(
    new_sl: float, value: float | None
) -> None:
    flying = pending("XAUUSD", "buy", 0.1, 2640.30, 2650.30)  # 0.1 x 100 x 10.00 = 100.00
    ctx = context(
        ("agent_1", book(ATLAS, 200, pending=[flying])), ("agent_3", book(BIG_NOVA, 1000))
    )
    decision = check_open(ctx, "agent_3", order("XAUUSD", "buy", 0.01, new_sl))
    if value is None:
        assert decision.allowed, decision.message
    else:
        assert_denied(decision, "max_total_exposure")
        assert decision.details() == {"check": "max_total_exposure", "limit": 120.0, "value": value}


def test_each_agents_open_risk_is_priced_on_its_own_bridges_quotes() -> None:
    """Brokers quote a symbol differently, and a gap on one bridge is not on the other.
    agent_1's buy 0.1 XAUUSD (SL 2640) at its own bridge's bid 2650.00 risks 100.00; at
    agent_3's bid 2641.00 it would seem to risk 10.00, and agent_3's 20.01 would pass."""
    held = position("XAUUSD", "buy", 0.1, 2645.0, 2640.00)
    own = {"XAUUSD": tick("XAUUSD", 2650.00, 2650.30)}
    there = {"XAUUSD": tick("XAUUSD", 2641.00, 2641.30)}
    ctx = context(
        ("agent_1", book(ATLAS, 200, positions=[held], quotes=own)),
        ("agent_3", book(BIG_NOVA, 1000, quotes=there)),
        prices=there,
    )
    decision = check_open(ctx, "agent_3", order("XAUUSD", "buy", 0.01, 2621.29))
    assert_denied(decision, "max_total_exposure")
    assert decision.details() == {"check": "max_total_exposure", "limit": 120.0, "value": 120.01}


def test_no_risk_is_added_while_an_agents_open_risk_is_unknown() -> None:
    """agent_1's bridge answered a ``/positions`` row the hub could not read: a position
    of unknown risk, maybe one no hub has read whole (a restart). The total exposure
    cannot be known, so agent_3's trade, however small, is refused by it."""
    ctx = context(("agent_1", book(ATLAS, 200, unreadable=1)), ("agent_3", book(BIG_NOVA, 1000)))
    decision = check_open(ctx, "agent_3", order("XAUUSD", "buy", 0.01, 2649.30))
    assert_denied(decision, "max_total_exposure")
    assert decision.details() == {"check": "max_total_exposure", "limit": 120.0, "value": None}
    assert "could not read (agent_1: 1)" in decision.message, decision.message


def test_total_exposure_shows_a_floored_limit() -> None:
    """Total equity 1200.05 x 10% = 120.005; 100.00 held + 20.01 = 120.01 is over it."""
    held = position("XAUUSD", "buy", 0.1, 2645.0, 2640.00)
    ctx = context(
        ("agent_1", book(ATLAS, 200, positions=[held])),
        ("agent_3", book(BIG_NOVA, 1000, equity=1000.05)),
    )
    decision = check_open(ctx, "agent_3", order("XAUUSD", "buy", 0.01, 2630.29))
    assert decision.details() == {"check": "max_total_exposure", "limit": 120.0, "value": 120.01}


def fixed_correlation(value: float | None) -> CorrelationLookup:
    def lookup(_bridge: str, a: str, b: str) -> float | None:
        assert a != b, "the same symbol is never looked up"
        return value if {a, b} == {"EURUSD", "GBPUSD"} else None

    return lookup


ORION = agent(["EURUSD", "GBPUSD"], per_trade=0.015, max_positions=2)


@pytest.mark.parametrize(
    ("corr", "held", "new", "denied"),
    [
        (0.8, "buy", "buy", True),  # same direction, positively correlated
        (0.8, "buy", "sell", False),  # a hedge
        (-0.8, "buy", "sell", True),  # opposite actions on inversely correlated pairs
        (-0.8, "buy", "buy", False),
        (0.5, "buy", "buy", False),  # exactly at the limit
        (0.5001, "buy", "buy", True),
        (None, "buy", "buy", False),  # not enough samples yet
    ],
)
def test_correlation_limit_against_other_agents(
    corr: float | None, held: Action, new: Action, denied: bool
) -> None:
    eur = position("EURUSD", held, 0.1, 1.08, 1.07 if held == "buy" else 1.09, ticket=7)
    ctx = context(
        ("agent_2", book(ORION, 500, positions=[eur])),
        ("agent_3", book(NOVA, 1000)),
        correlation=fixed_correlation(corr),
    )
    sl = 1.26010 if new == "buy" else 1.28000
    decision = check_open(ctx, "agent_3", order("GBPUSD", new, 0.01, sl))
    if denied:
        assert_denied(decision, "correlation_limit")
        assert decision.details() == {"check": "correlation_limit", "limit": 0.5, "value": corr}
        assert "agent_2" in decision.message and "EURUSD" in decision.message
    else:
        assert decision.allowed, decision.message


def test_correlation_beyond_the_limit_never_reads_as_at_it() -> None:
    eur = position("EURUSD", "buy", 0.1, 1.08, 1.07, ticket=7)
    ctx = context(
        ("agent_2", book(ORION, 500, positions=[eur])),
        ("agent_3", book(NOVA, 1000)),
        correlation=fixed_correlation(0.50004),
    )
    decision = check_open(ctx, "agent_3", order("GBPUSD", "buy", 0.01, 1.26010))
    assert decision.details() == {"check": "correlation_limit", "limit": 0.5, "value": 0.5001}


def per_bridge(values: dict[str, float]) -> tuple[CorrelationLookup, list[str]]:
    """A lookup answering ``values[bridge]`` for any two symbols, and the bridges it was asked."""
    asked: list[str] = []

    def lookup(bridge: str, a: str, b: str) -> float | None:
        assert a != b, "the same symbol is never looked up"
        asked.append(bridge)
        return values.get(bridge)

    return lookup, asked


EUR_BUY = position("EURUSD", "buy", 0.1, 1.08, 1.07, ticket=7)
EUR_FLYING = pending("EURUSD", "buy", 0.1, 1.07, 1.0801)

BRIDGE_CASES: list[tuple[str, str, str, dict[str, float], str | None]] = [
    # name, trader, its order's symbol, correlation per bridge, the bridge expected asked
    # agent_3 (Nova) trades EURUSD too: its own quotes decide, not agent_2's.
    ("trader trades both: its bridge", "agent_3", "GBPUSD", {"agent_3": 0.9}, "agent_3"),
    ("trader trades both: other bridge ignored", "agent_3", "GBPUSD", {"agent_2": 0.9}, None),
    # agent_1 (Atlas) trades only XAUUSD: EURUSD is measured on the holder's bridge.
    ("trader lacks the symbol: holder's bridge", "agent_1", "XAUUSD", {"agent_2": 0.9}, "agent_2"),
    ("holder's bridge does not know: skipped", "agent_1", "XAUUSD", {"agent_1": 0.9}, None),
]


@pytest.mark.parametrize("held", ["open", "in flight"])
@pytest.mark.parametrize(
    ("trader", "symbol", "values", "denied_on"),
    [c[1:] for c in BRIDGE_CASES],
    ids=[c[0] for c in BRIDGE_CASES],
)
def test_correlation_is_measured_on_one_bridge_against_open_and_pending_orders(
    held: str, trader: str, symbol: str, values: dict[str, float], denied_on: str | None
) -> None:
    lookup, asked = per_bridge(values)
    holder = (
        book(ORION, 500, positions=[EUR_BUY])
        if held == "open"
        else book(ORION, 500, pending=[EUR_FLYING])
    )
    ctx = context(
        ("agent_1", book(ATLAS, 200)),
        ("agent_2", holder),
        ("agent_3", book(NOVA, 1000)),
        correlation=lookup,
    )
    sl = 2648.50 if symbol == "XAUUSD" else 1.26010
    decision = check_open(ctx, trader, order(symbol, "buy", 0.01, sl))
    expected_bridge = "agent_3" if trader == "agent_3" else "agent_2"
    assert asked == [expected_bridge]
    if denied_on is None:
        assert decision.allowed, decision.message
    else:
        assert_denied(decision, "correlation_limit")
        assert f"{denied_on}'s quotes" in decision.message
        assert ("in-flight" in decision.message) == (held == "in flight")


def test_same_symbol_is_not_a_correlation() -> None:
    held = position("XAUUSD", "buy", 0.01, 2650.0, 2649.0)
    ctx = context(
        ("agent_3", book(NOVA, 1000, positions=[held])), correlation=fixed_correlation(1.0)
    )
    assert check_open(ctx, "agent_3", order("XAUUSD", "buy", 0.01, 2649.0)).allowed


def window_context() -> RiskContext:
    """agent_2 holds a EURUSD buy; the correlation comes from a ReturnsWindow of walks."""
    window = ReturnsWindow(120)
    feed(window, walks(200), agent_id="agent_3")  # the trader's bridge: NOVA trades both
    eur = position("EURUSD", "buy", 0.1, 1.08, 1.07)
    return context(
        ("agent_2", book(ORION, 500, positions=[eur])),
        ("agent_3", book(NOVA, 1000)),
        correlation=window.correlation,
    )


def test_window_correlation_denies_adding_to_a_correlated_position() -> None:
    decision = check_open(window_context(), "agent_3", order("GBPUSD", "buy", 0.01, 1.26))
    assert_denied(decision, "correlation_limit")


def test_window_correlation_allows_a_hedge() -> None:
    assert check_open(window_context(), "agent_3", order("GBPUSD", "sell", 0.01, 1.28)).allowed


# -- gates and their order ----------------------------------------------------------------


def test_emergency_stop_rejects_with_its_own_code() -> None:
    decision = check_open(context(emergency=True), "agent_1", order("XAUUSD", "buy", 0.01, 2649.0))
    assert_denied(decision, "emergency_stop", code="emergency_stop")


def test_disabled_agent_rejects_with_agent_disabled() -> None:
    off = agent(["XAUUSD"], per_trade=0.01, max_positions=1, enabled=False)
    decision = check_open(context(("a", book(off, 200))), "a", order("XAUUSD", "buy", 0.01, 2649.0))
    assert_denied(decision, "enabled", code="agent_disabled")
    assert decision.details() == {"check": "enabled", "limit": True, "value": False}


def test_symbol_not_traded_by_the_agent() -> None:
    decision = check_open(context(), "agent_1", order("EURUSD", "buy", 0.01, 1.07))
    assert_denied(decision, "allowed_symbols")
    assert decision.details() == {
        "check": "allowed_symbols",
        "limit": ["XAUUSD"],
        "value": "EURUSD",
    }


def test_unknown_agent_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="agent_9"):
        check_open(context(), "agent_9", order("XAUUSD", "buy", 0.01, 2649.0))


ORDER_CASES: list[tuple[dict[str, Any], TradeOrder, str]] = [
    ({"emergency": True, "enabled": False}, order("EURUSD", "buy", 0.0, None), "emergency_stop"),
    ({"enabled": False}, order("EURUSD", "buy", 0.0, None), "enabled"),
    ({}, order("EURUSD", "buy", 0.0, None), "allowed_symbols"),
    ({}, order("XAUUSD", "buy", 0.0, None), "lots"),
    ({}, order("XAUUSD", "buy", 0.015, None), "lot_step"),
    ({}, order("XAUUSD", "buy", 60.0, None), "max_lots"),
    ({}, order("XAUUSD", "buy", 1.0, None), "sl_required"),
    ({"held": 1}, order("XAUUSD", "buy", 1.0, 2660.0, 2640.0), "sl_side"),
    ({"held": 1}, order("XAUUSD", "buy", 1.0, 2640.0, 2640.0), "tp_side"),
    ({"held": 1, "equity": 100}, order("XAUUSD", "buy", 1.0, 2640.0), "max_risk_per_trade"),
    ({"held": 1, "equity": 100}, order("XAUUSD", "buy", 0.01, 2649.0), "max_positions"),
]


@pytest.mark.parametrize(("setup", "trade", "check"), ORDER_CASES)
def test_first_failing_check_in_pipeline_order_wins(
    setup: dict[str, Any], trade: TradeOrder, check: str
) -> None:
    config = agent(["XAUUSD"], per_trade=0.01, max_positions=1, enabled=setup.get("enabled", True))
    held = [position("XAUUSD", "buy", 0.01, 2650.0, 2649.0)] * setup.get("held", 0)
    agent_book = book(config, 200, equity=setup.get("equity"), positions=held)
    ctx = context(("a", agent_book), emergency=setup.get("emergency", False))
    assert check_open(ctx, "a", trade).check == check


# -- the pipeline order, pair by pair -----------------------------------------------------

# The order documented in hub/risk/checks.py and docs/risk.md: the first denial wins.
DOCUMENTED_ORDER = (
    "emergency_stop",
    "enabled",
    "allowed_symbols",
    "lots",
    "lot_step",
    "min_lots",
    "max_lots",
    "sl_required",
    "price",
    "sl_side",
    "tp_side",
    "max_risk_per_trade",
    "max_positions",
    "daily_loss",
    "max_total_exposure",
    "correlation_limit",
)


@dataclass(frozen=True)
class Setup:
    """One order by agent ``a`` (balance 1000, 1% = 10.00 a trade, 2 positions, 5% a day)
    next to agent ``b`` (equity 1000, holding ``other``). The defaults pass every check:
    a 0.01 lot XAUUSD buy from the ask 2650.30 to the SL 2645.00 risks 5.30."""

    emergency: bool = False
    enabled: bool = True
    symbol: str = "XAUUSD"
    lots: float = 0.01
    sl: float | None = 2645.00
    tp: float | None = None
    prices: dict[str, Tick] | None = None  # None: PRICES
    specs: dict[str, SymbolSpec] | None = None  # None: SPECS
    held: int = 0  # a's open positions
    equity: float = 1000.0  # a's equity; its start of day is 1000
    other: Position | None = None  # b's open position
    correlation: float | None = None  # of XAUUSD with every other symbol

    def decide(self) -> RiskDecision:
        config = agent(["XAUUSD", "EURJPY"], per_trade=0.01, max_positions=2, enabled=self.enabled)
        held = [position("XAUUSD", "buy", 0.01, 2650.0, 2649.0, ticket=i) for i in range(self.held)]
        a = book(config, 1000, equity=self.equity, start=1000, positions=held)
        b = book(NOVA, 1000, positions=[self.other] if self.other else [])
        corr = self.correlation
        ctx = context(
            ("a", a),
            ("b", b),
            prices=self.prices,
            specs=self.specs,
            emergency=self.emergency,
            correlation=None if corr is None else (lambda _bridge, _a, _b: corr),
        )
        return check_open(ctx, "a", order(self.symbol, "buy", self.lots, self.sl, self.tp))


GOLD_MIN_2 = {"XAUUSD": SymbolSpec(contract_size=100, digits=2, min_lots=0.02)}
# A spec the config loader refuses (min_lots > max_lots): the one way both lot bounds deny.
GOLD_MIN_OVER_MAX = {"XAUUSD": SymbolSpec(contract_size=100, digits=2, min_lots=1.0, max_lots=0.5)}
EURJPY_ONLY = {"EURJPY": tick("EURJPY", 162.000, 162.000)}  # no USDJPY: JPY risk unconvertible
GOLD_BIG = position("XAUUSD", "buy", 1.0, 2650.0, 2600.0)  # b risks 5000, past 10% of equity
CABLE_BIG = position("GBPUSD", "buy", 1.0, 1.27, 1.20)  # b risks 7000
CABLE_SMALL = position("GBPUSD", "buy", 1.0, 1.27, 1.2699)  # b risks 10

# For each check but the last: a setup in which it and the next check both deny, and
# the change that lifts its own denial only (so the next one shows).
BOTH_DENY: dict[str, tuple[Setup, dict[str, Any]]] = {
    "emergency_stop": (Setup(emergency=True, enabled=False), {"emergency": False}),
    "enabled": (Setup(enabled=False, symbol="EURUSD"), {"enabled": True}),
    "allowed_symbols": (Setup(symbol="EURUSD", lots=0.0), {"symbol": "XAUUSD"}),
    "lots": (Setup(lots=-0.015), {"lots": 0.015}),
    "lot_step": (Setup(lots=0.015, specs=GOLD_MIN_2), {"lots": 0.01}),
    "min_lots": (Setup(lots=0.7, specs=GOLD_MIN_OVER_MAX), {"lots": 1.0}),
    "max_lots": (Setup(lots=60.0, sl=None), {"lots": 0.01}),
    "sl_required": (Setup(sl=None, prices={}), {"sl": 2645.00}),
    "price": (
        Setup(symbol="EURJPY", sl=163.0, prices=EURJPY_ONLY),
        {"prices": {**EURJPY_ONLY, "USDJPY": PRICES["USDJPY"]}},
    ),
    "sl_side": (Setup(sl=2655.00, tp=2640.00), {"sl": 2645.00}),
    "tp_side": (Setup(tp=2640.00, sl=2600.00), {"tp": None}),
    "max_risk_per_trade": (Setup(sl=2600.00, held=2), {"sl": 2645.00}),
    "max_positions": (Setup(held=2, equity=950.0), {"held": 0}),
    "daily_loss": (Setup(equity=950.0, other=GOLD_BIG), {"equity": 1000.0}),
    "max_total_exposure": (Setup(other=CABLE_BIG, correlation=0.9), {"other": CABLE_SMALL}),
}
PAIRS = [(a, b, *BOTH_DENY[a]) for a, b in pairwise(DOCUMENTED_ORDER)]


def test_the_pipeline_setup_passes_every_check() -> None:
    decision = Setup().decide()
    assert decision.allowed, decision.message


@pytest.mark.parametrize(
    ("first", "second", "setup", "lift"), PAIRS, ids=[f"{a} before {b}" for a, b, *_ in PAIRS]
)
def test_each_check_denies_before_the_next_one_in_the_documented_order(
    first: str, second: str, setup: Setup, lift: dict[str, Any]
) -> None:
    assert setup.decide().check == first
    assert replace(setup, **lift).decide().check == second  # the second was denying too


def test_open_checks_names_the_pipeline_in_its_documented_order() -> None:
    assert OPEN_CHECKS == DOCUMENTED_ORDER
