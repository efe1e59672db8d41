"""Money at risk to the stops (``hub.risk._money``, public as ``hub.risk.open_risk``)."""

from __future__ import annotations

import pytest

from hub.risk import open_risk
from tests.hub.risk.builders import PRICES, SPECS, position


def test_open_risk_sums_positions_to_their_sl() -> None:
    positions = [
        position("XAUUSD", "buy", 0.1, 2645.0, 2640.0),  # bid 2650.00 -> 100.00
        position("XAUUSD", "sell", 0.01, 2655.0, 2651.30),  # ask 2650.30 -> 1.00
        position("USDJPY", "buy", 0.1, 150.0, 149.7),  # 3000 JPY / 150 -> 20.00
        position("XAUUSD", "buy", 0.1, 2645.0, None),  # no SL -> no_sl_risk
        position("NZDUSD", "buy", 0.1, 0.6, 0.59),  # no spec -> no_sl_risk
    ]
    assert open_risk(positions, PRICES, SPECS, no_sl_risk=5.0) == pytest.approx(131.0)


def test_open_risk_falls_back_to_the_open_price_without_a_quote() -> None:
    held = [position("USDJPY", "sell", 0.1, 150.0, 150.3)]
    assert open_risk(held, {}, SPECS) == pytest.approx(20.0)
