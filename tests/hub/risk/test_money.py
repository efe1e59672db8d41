"""Money and lots math (``hub.risk._money``; public as ``hub.risk.open_risk`` and
``hub.risk.normalise_lots``): risk to the stops, lots on the step, money as shown."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.config import SymbolSpec
from hub.risk import normalise_lots, open_risk
from hub.risk._money import book_risk, exceeds, limit_cents, value_cents
from tests.hub.risk.builders import NOVA, PRICES, SPECS, book, pending, position


def test_open_risk_sums_positions_to_their_sl() -> None:
    positions = [
        position("XAUUSD", "buy", 0.1, 2645.0, 2640.0),  # bid 2650.00 -> 100.00
        position("XAUUSD", "sell", 0.01, 2655.0, 2651.30),  # ask 2650.30 -> 1.00
        position("USDJPY", "buy", 0.1, 150.0, 149.7),  # 3000 JPY / 150 -> 20.00
        position("XAUUSD", "buy", 0.1, 2645.0, None),  # no SL -> no_sl_risk
        position("NZDUSD", "buy", 0.1, 0.6, 0.59),  # no spec -> no_sl_risk
        position("XAUUSD", "buy", 0.1, 2645.0, 2651.0),  # SL above the bid: 0, never negative
    ]
    assert open_risk(positions, PRICES, SPECS, no_sl_risk=5.0) == pytest.approx(131.0)


def test_open_risk_falls_back_to_the_open_price_without_a_quote() -> None:
    held = [position("USDJPY", "sell", 0.1, 150.0, 150.3)]
    assert open_risk(held, {}, SPECS) == pytest.approx(20.0)


def test_book_risk_counts_pending_orders_from_their_entry() -> None:
    flying = [
        pending("XAUUSD", "buy", 0.1, 2640.30, 2650.30),  # 100.00 from the entry, not the bid
        pending("XAUUSD", "sell", 0.01, 2651.00, 2650.00),  # 1.00
        pending("USDJPY", "sell", 0.1, 150.300, 150.000),  # 3000 JPY / 150 -> 20.00
        pending("XAUUSD", "buy", 0.01, None, 2650.30),  # no SL -> Nova's budget 20.00
        pending("NZDUSD", "buy", 0.1, 0.59, 0.6),  # no spec -> the budget 20.00
    ]
    held = [position("XAUUSD", "buy", 0.1, 2645.0, None)]  # no SL -> the budget 20.00
    agent_book = book(NOVA, 1000, positions=held, pending=flying)
    assert book_risk(agent_book, PRICES, SPECS) == pytest.approx((20.0, 161.0))


GOLD = SymbolSpec(contract_size=100, digits=2)


@pytest.mark.parametrize(
    ("lots", "step", "expected"),
    [
        (0.0100000001, 0.01, 0.01),
        (0.0099999999, 0.01, 0.01),
        (0.07, 0.01, 0.07),  # 7.000000000000001 steps
        (0.3, 0.1, 0.3),  # 2.9999999999999996 steps
        (0.0100000099, 0.01, 0.01),  # 0.99e-6 of a step off: snapped
        (0.0100000101, 0.01, 0.0100000101),  # 1.01e-6 of a step off: unchanged
        (0.015, 0.01, 0.015),  # off the step: unchanged (lot_step refuses it)
        (2.5, 0.5, 2.5),
        (1e-12, 0.01, 0.0),  # snapped to zero: the lots check refuses it
        (-0.0100000001, 0.01, -0.01),
    ],
)
def test_normalise_lots_snaps_to_the_nearest_step_within_a_millionth_of_one(
    lots: float, step: float, expected: float
) -> None:
    spec = SymbolSpec(contract_size=100, digits=2, lot_step=step)
    assert normalise_lots(lots, spec) == expected


@pytest.mark.parametrize("lots", [math.nan, math.inf, -math.inf])
def test_normalise_lots_leaves_non_numbers_to_the_lots_check(lots: float) -> None:
    assert normalise_lots(lots, GOLD) is lots


@pytest.mark.parametrize(
    ("amount", "limit", "value"),
    [
        (1.797, 1.79, 1.8),
        (1.80, 1.8, 1.8),
        (10.299999999999727, 10.3, 10.3),  # float noise either side of a cent is tolerated
        (2.0000000001, 2.0, 2.0),
        (1.9999999999, 2.0, 2.0),
        (2.0001, 2.0, 2.01),
        (1.9999, 1.99, 2.0),
        (0.0, 0.0, 0.0),
    ],
)
def test_limits_are_shown_floored_and_values_ceiled_to_cents(
    amount: float, limit: float, value: float
) -> None:
    assert (limit_cents(amount), value_cents(amount)) == (limit, value)


money = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@given(money, money)
def test_a_refused_value_is_always_shown_above_its_limit(limit: float, value: float) -> None:
    if exceeds(value, limit):
        assert value_cents(value) > limit_cents(limit)


@given(money)
def test_shown_money_is_within_a_cent_of_the_amount(amount: float) -> None:
    assert amount - 0.01 < limit_cents(amount) <= amount + 1e-6
    assert amount - 1e-6 <= value_cents(amount) < amount + 0.01
