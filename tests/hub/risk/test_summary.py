"""Risk state over time: start-of-day equity, rolling correlation, trading state, summaries."""

from __future__ import annotations

import math
import random

import pytest

from hub.risk import (
    DAY_MS,
    AgentRiskSummary,
    DailyBaseline,
    ExposureSummary,
    ReturnsWindow,
    agent_risk_summary,
    check_open,
    exposure_summary,
    open_risk,
    trading_state,
)
from tests.hub.risk.test_checks import (
    ATLAS,
    NOVA,
    PRICES,
    SPECS,
    agent,
    assert_denied,
    book,
    context,
    order,
    position,
)

# -- DailyBaseline -----------------------------------------------------------------------

DAY = 20_000  # an arbitrary UTC day number


def test_first_equity_of_the_day_is_the_baseline() -> None:
    baseline = DailyBaseline()
    assert baseline.observe(200.0, DAY * DAY_MS + 5) == 200.0
    assert baseline.observe(190.0, DAY * DAY_MS + 3_600_000) == 200.0
    assert (baseline.day, baseline.equity) == (DAY, 200.0)


@pytest.mark.parametrize(
    ("second_ms", "expected"),
    [
        ((DAY + 1) * DAY_MS - 1, 200.0),  # 23:59:59.999 UTC, same day
        ((DAY + 1) * DAY_MS, 180.0),  # midnight UTC: a new day
        ((DAY + 3) * DAY_MS + 7, 180.0),  # days later
    ],
)
def test_baseline_resets_at_utc_midnight(second_ms: int, expected: float) -> None:
    baseline = DailyBaseline()
    baseline.observe(200.0, DAY * DAY_MS)
    assert baseline.observe(180.0, second_ms) == expected


def test_an_update_from_an_earlier_day_changes_nothing() -> None:
    baseline = DailyBaseline()
    baseline.observe(200.0, DAY * DAY_MS)
    assert baseline.observe(150.0, DAY * DAY_MS - 1) == 200.0
    assert baseline.day == DAY


def test_baseline_restored_from_persisted_values() -> None:
    baseline = DailyBaseline(day=DAY, equity=210.0)
    assert baseline.observe(190.0, DAY * DAY_MS + 10) == 210.0
    with pytest.raises(ValueError, match="both day and equity"):
        DailyBaseline(day=DAY)


# -- ReturnsWindow -----------------------------------------------------------------------


def feed(window: ReturnsWindow, series: dict[str, list[float]], bucket_ms: int = 1000) -> None:
    for i in range(len(next(iter(series.values())))):
        for symbol, prices in series.items():
            window.observe(symbol, prices[i], prices[i] + 0.0001, i * bucket_ms + 123)


def walks(n: int, seed: int = 7) -> dict[str, list[float]]:
    """EURUSD a random walk; GBPUSD mostly follows it, USDCHF mostly mirrors it, XAUUSD not."""
    rng = random.Random(seed)
    eur, gbp, chf, xau = [1.08], [1.27], [0.90], [2650.0]
    for _ in range(n - 1):
        shock = rng.gauss(0, 0.0005)
        eur.append(eur[-1] * math.exp(shock))
        gbp.append(gbp[-1] * math.exp(shock + rng.gauss(0, 0.0002)))
        chf.append(chf[-1] * math.exp(-shock + rng.gauss(0, 0.0002)))
        xau.append(xau[-1] * math.exp(rng.gauss(0, 0.0005)))
    return {"EURUSD": eur, "GBPUSD": gbp, "USDCHF": chf, "XAUUSD": xau}


@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [
        ("EURUSD", "GBPUSD", 0.8, 1.0),
        ("GBPUSD", "EURUSD", 0.8, 1.0),
        ("EURUSD", "USDCHF", -1.0, -0.8),
        ("EURUSD", "XAUUSD", -0.4, 0.4),
    ],
)
def test_correlation_of_synthetic_series(a: str, b: str, low: float, high: float) -> None:
    window = ReturnsWindow(120)
    feed(window, walks(300))
    corr = window.correlation(a, b)
    assert corr is not None and low <= corr <= high, corr


def test_correlation_is_none_until_enough_samples() -> None:
    window = ReturnsWindow(120, min_samples=10)
    data = walks(11)
    feed(window, {k: v[:10] for k, v in data.items()})  # 9 returns
    assert window.correlation("EURUSD", "GBPUSD") is None
    feed(window, data)  # 10 returns
    assert window.correlation("EURUSD", "GBPUSD") is not None
    assert window.correlation("EURUSD", "NZDUSD") is None


def test_flat_series_has_no_correlation() -> None:
    window = ReturnsWindow(20, min_samples=5)
    feed(window, {"EURUSD": [1.08] * 30, "GBPUSD": walks(30)["GBPUSD"]})
    assert window.correlation("EURUSD", "GBPUSD") is None


def test_last_tick_in_a_bucket_wins_and_gaps_repeat_the_price() -> None:
    window = ReturnsWindow(10, min_samples=3)
    for i, price in enumerate([1.0, 2.0, 1.0, 2.0, 1.0]):
        window.observe("A", price, price, i * 1000)
        window.observe("B", 9.0, 9.0, i * 1000)  # overwritten below within the same bucket
        window.observe("B", price * 3, price * 3, i * 1000 + 999)
    assert window.correlation("A", "B") == pytest.approx(1.0)
    # A skips buckets 5-7: they must repeat 1.0 to stay aligned with B, which reports each.
    window.observe("A", 4.0, 4.0, 8000)
    for bucket, price in [(5, 3.0), (6, 3.0), (7, 3.0), (8, 12.0)]:
        window.observe("B", price, price, bucket * 1000)
    assert window.correlation("A", "B") == pytest.approx(1.0)


def test_late_ticks_are_ignored() -> None:
    window = ReturnsWindow(10, min_samples=3)
    feed(window, {"A": [1.0, 2.0, 1.0, 2.0], "B": [1.0, 2.0, 1.0, 2.0]})
    window.observe("A", 50.0, 50.0, 0)
    assert window.correlation("A", "B") == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": 1}, "size"),
        ({"size": 10, "bucket_ms": 0}, "bucket_ms"),
        ({"size": 10, "min_samples": 11}, "min_samples"),
    ],
)
def test_window_rejects_bad_parameters(kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ReturnsWindow(**kwargs)


def test_window_rejects_bad_prices() -> None:
    with pytest.raises(ValueError, match="bid/ask"):
        ReturnsWindow(10).observe("A", math.nan, 1.0, 0)


def test_window_correlation_drives_the_correlation_check() -> None:
    window = ReturnsWindow(120)
    feed(window, walks(200))
    orion = agent(["EURUSD", "GBPUSD"], per_trade=0.015, max_positions=2)
    eur = position("EURUSD", "buy", 0.1, 1.08, 1.07)
    ctx = context(
        ("agent_2", book(orion, 500, positions=[eur])),
        ("agent_3", book(NOVA, 1000)),
        correlation=window.correlation,
    )
    assert_denied(
        check_open(ctx, "agent_3", order("GBPUSD", "buy", 0.01, 1.26)), "correlation_limit"
    )
    assert check_open(ctx, "agent_3", order("GBPUSD", "sell", 0.01, 1.28)).allowed


# -- trading state and summaries ---------------------------------------------------------


@pytest.mark.parametrize(
    ("enabled", "equity", "emergency", "state"),
    [
        (True, 200.0, False, "active"),
        (True, 190.01, False, "active"),
        (True, 190.0, False, "halted"),  # lost exactly 5% of 200
        (False, 190.0, False, "disabled"),
        (False, 190.0, True, "stopped"),
    ],
)
def test_trading_state(enabled: bool, equity: float, emergency: bool, state: str) -> None:
    config = agent(["XAUUSD"], per_trade=0.01, max_positions=1, enabled=enabled)
    ctx = context(("a", book(config, 200, equity=equity, start=200)), emergency=emergency)
    assert trading_state(ctx, "a") == state


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


def test_agent_risk_summary() -> None:
    held = position("XAUUSD", "buy", 0.01, 2650.30, 2648.50)
    ctx = context(("agent_1", book(ATLAS, 200, equity=195.5, start=201, positions=[held])))
    assert agent_risk_summary(ctx, "agent_1") == AgentRiskSummary(
        agent_id="agent_1",
        state="active",
        balance=200.0,
        equity=195.5,
        start_of_day_equity=201.0,
        daily_loss_used=5.5,
        daily_loss_limit=10.05,
        open_risk=1.5,
        positions_used=1,
        positions_limit=1,
    )


def test_exposure_summary_spans_all_agents() -> None:
    held = position("XAUUSD", "buy", 0.1, 2645.0, 2640.0)
    ctx = context(("agent_1", book(ATLAS, 200, positions=[held])), ("agent_3", book(NOVA, 1000)))
    assert exposure_summary(ctx) == ExposureSummary(
        open_risk=100.0,
        total_equity=1200.0,
        limit=120.0,
        max_total_exposure=0.1,
        emergency_stop=False,
    )
