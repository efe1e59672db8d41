"""The check after a fill (``hub.risk.fill``): risk at the fill price, and the tightened SL."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.bridge.models import Action, Position
from hub.config import GlobalRisk
from hub.risk import FillBreach, check_fill
from hub.risk._money import EPS, risk_to_stop
from tests.hub.risk.builders import ATLAS, NOVA, PRICES, SPECS, book, context, position, tick

# agent_1 (balance 200, 1% = 2.00 a trade) and agent_3 (balance 1000, 2% = 20.00); the
# market is bid 2650.00 / ask 2650.30.
CTX = context(("agent_1", book(ATLAS, 200)), ("agent_3", book(NOVA, 1000)))


def gold(action: Action, lots: float, fill: float, sl: float | None) -> Position:
    return position("XAUUSD", action, lots, fill, sl)


@pytest.mark.parametrize(
    ("agent_id", "filled", "tolerance", "breach"),
    [
        pytest.param("agent_1", gold("buy", 0.01, 2650.30, 2648.50), 0.1, None, id="as checked"),
        pytest.param(
            "agent_1", gold("buy", 0.01, 2650.70, 2648.50), 0.1, None, id="2.20: 10% over passes"
        ),
        pytest.param(
            "agent_1",
            gold("buy", 0.01, 2650.71, 2648.50),
            0.1,
            (2.21, 2648.71),
            id="2.21: a cent beyond 10%",
        ),
        pytest.param(
            "agent_1", gold("buy", 0.01, 2650.50, 2648.50), 0.0, None, id="no tolerance: 2.00"
        ),
        pytest.param(
            "agent_1",
            gold("buy", 0.01, 2650.51, 2648.50),
            0.0,
            (2.01, 2648.51),
            id="no tolerance: 2.01",
        ),
        pytest.param(
            "agent_1", gold("sell", 0.01, 2649.29, 2651.50), 0.1, (2.21, 2651.29), id="sell 2.21"
        ),
        # 2.00 / (0.03 x 100) = 0.6667 of price, rounded towards the entry: risks 1.98
        pytest.param(
            "agent_1",
            gold("buy", 0.03, 2650.30, 2649.00),
            0.1,
            (3.9, 2649.64),
            id="buy: rounded up to the digits",
        ),
        pytest.param(
            "agent_1",
            gold("sell", 0.03, 2650.00, 2651.30),
            0.1,
            (3.9, 2650.66),
            id="sell: rounded down to the digits",
        ),
        # 5000 JPY / 150 = 33.33 USD; 20.00 USD is 0.300 of USDJPY at 0.1 lot
        pytest.param(
            "agent_3",
            position("USDJPY", "buy", 0.1, 150.000, 149.500),
            0.1,
            (33.3333, 149.7),
            id="usdjpy converted",
        ),
        pytest.param(
            "agent_1", gold("buy", 0.01, 2660.00, None), 0.1, None, id="no sl: the budget"
        ),
    ],
)
def test_check_fill_recomputes_the_risk_from_the_fill_price(
    agent_id: str, filled: Position, tolerance: float, breach: tuple[float, float | None] | None
) -> None:
    found = check_fill(CTX, agent_id, filled, tolerance)
    if breach is None:
        assert found is None
    else:
        assert found is not None
        risk, tightened = breach
        assert found.risk == pytest.approx(risk, abs=1e-4)
        assert found.limit == CTX.agents[agent_id].per_trade_budget
        assert found.tightened_sl == tightened


def test_no_tightened_sl_when_it_would_not_be_below_the_bid() -> None:
    """The price fell after a slipped fill: an SL at 2648.71 is above the bid, so close."""
    ctx = context(
        ("agent_1", book(ATLAS, 200)), prices={"XAUUSD": tick("XAUUSD", 2648.71, 2649.01)}
    )
    found = check_fill(ctx, "agent_1", gold("buy", 0.01, 2650.71, 2648.50), 0.1)
    assert isinstance(found, FillBreach)
    assert (round(found.risk, 6), found.limit, found.tightened_sl) == (2.21, 2.0, None)


def test_no_tightened_sl_without_a_current_quote() -> None:
    ctx = context(("agent_1", book(ATLAS, 200)), prices={})
    found = check_fill(ctx, "agent_1", position("XAUUSD", "buy", 0.01, 2650.71, 2648.50), 0.1)
    assert found is not None and found.tightened_sl is None


def test_the_breach_message_shows_honest_numbers() -> None:
    """Balance 179.70: the budget 1.797 shows as 1.79, the risk 2.2001 as 2.21."""
    ctx = context(("agent_1", book(ATLAS, 179.70)))
    found = check_fill(ctx, "agent_1", position("XAUUSD", "buy", 0.01, 2650.71, 2648.50), 0.1)
    assert found is not None
    assert "risks 2.21 USD to its sl 2648.5, above the per-trade limit 1.79 USD" in found.message


@given(
    action=st.sampled_from(["buy", "sell"]),
    lots=st.integers(min_value=1, max_value=500).map(lambda n: n / 100),
    slip=st.integers(min_value=0, max_value=5000).map(lambda n: n / 100),
    distance=st.integers(min_value=1, max_value=5000).map(lambda n: n / 100),
)
def test_the_tightened_sl_risks_at_most_the_budget_and_one_point_further_more(
    action: Action, lots: float, slip: float, distance: float
) -> None:
    quote = PRICES["XAUUSD"]
    fill = quote.ask + slip if action == "buy" else quote.bid - slip
    sl = fill - distance if action == "buy" else fill + distance
    ctx = context(("agent_3", book(NOVA, 1000)))
    found = check_fill(ctx, "agent_3", position("XAUUSD", action, lots, fill, sl), 0.0)
    if found is None or found.tightened_sl is None:
        return
    spec, budget = SPECS["XAUUSD"], 20.0

    def risk(level: float) -> float:
        value = risk_to_stop("XAUUSD", action, lots, spec, fill, level, "USD", PRICES)
        assert value is not None
        return value

    level, point = found.tightened_sl, 0.01
    assert risk(level) <= budget + EPS
    assert risk(level - point if action == "buy" else level + point) > budget + EPS
    assert level < quote.bid if action == "buy" else level > quote.ask


# -- the day's headroom and the total exposure, after the fill ------------------------------
# A slipped fill within the per-trade tolerance can still cross the daily limit or the total
# exposure (each was checked on the pre-trade quote): the breach names the limit it crosses
# and tightens the SL to what that limit still leaves the position.

HELD = position("XAUUSD", "buy", 0.1, 2650.30, 2648.00, ticket=2)  # 20.00 from the bid 2650.00


def test_a_fill_past_the_day_s_headroom_is_a_daily_loss_breach() -> None:
    """agent_3: daily limit 50, lost 20, 20 open: 10 left. The fill risks 19.50 (within the
    20.00 per-trade budget): 59.50 > 55 (the limit + 10%); tightened to risk 10.00."""
    filled = position("XAUUSD", "buy", 0.1, 2650.30, 2648.35, ticket=1)
    ctx = context(("agent_3", book(NOVA, 1000, equity=980, positions=[HELD, filled])))
    found = check_fill(ctx, "agent_3", filled, 0.1)
    assert isinstance(found, FillBreach)
    assert found.check == "daily_loss"
    assert (round(found.risk, 6), round(found.limit, 6), found.tightened_sl) == (19.5, 10.0, 2649.3)
    assert "daily limit 50.00 USD" in found.message


def test_a_fill_within_the_day_s_limit_plus_tolerance_passes() -> None:
    """Lost 15: 15 + 20 + 19.50 = 54.50 <= 55."""
    filled = position("XAUUSD", "buy", 0.1, 2650.30, 2648.35, ticket=1)
    ctx = context(("agent_3", book(NOVA, 1000, equity=985, positions=[HELD, filled])))
    assert check_fill(ctx, "agent_3", filled, 0.1) is None


def test_a_fill_past_the_total_exposure_is_an_exposure_breach() -> None:
    """2 % of 1200 = 24.00; agent_3 holds 20.00 and fills 15.00 more: 35 > 26.40."""
    filled = position("XAUUSD", "buy", 0.1, 2650.30, 2648.80, ticket=1)
    ctx = msgspec.structs.replace(
        context(("agent_1", book(ATLAS, 200)), ("agent_3", book(NOVA, 1000, positions=[HELD]))),
        global_risk=GlobalRisk(max_total_exposure=0.02),
    )
    found = check_fill(ctx, "agent_3", filled, 0.1)
    assert isinstance(found, FillBreach)
    assert found.check == "max_total_exposure"
    assert (round(found.risk, 6), round(found.limit, 6), found.tightened_sl) == (15.0, 4.0, 2649.9)


def test_no_room_left_means_close() -> None:
    """Exposure already at the limit from another agent: no SL can fit, so close."""
    filled = position("XAUUSD", "buy", 0.01, 2650.30, 2648.50, ticket=1)
    ctx = msgspec.structs.replace(
        context(("agent_1", book(ATLAS, 200)), ("agent_3", book(NOVA, 1000, positions=[HELD]))),
        global_risk=GlobalRisk(max_total_exposure=0.015),
    )
    found = check_fill(ctx, "agent_1", filled, 0.1)
    assert isinstance(found, FillBreach)
    assert (found.check, found.tightened_sl) == ("max_total_exposure", None)
