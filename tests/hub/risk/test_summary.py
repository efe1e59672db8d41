"""Read-only risk views (``hub.risk.summary``): trading state, per-agent and global numbers."""

from __future__ import annotations

import pytest

from hub.risk import (
    AgentRiskSummary,
    ExposureSummary,
    agent_risk_summary,
    exposure_summary,
    trading_state,
)
from tests.hub.risk.builders import ATLAS, NOVA, agent, book, context, pending, position


@pytest.mark.parametrize(
    ("enabled", "equity", "halted", "emergency", "state"),
    [
        (True, 200.0, False, False, "active"),
        (True, 190.01, False, False, "active"),
        (True, 190.0, False, False, "halted"),  # lost exactly 5% of 200
        (True, 210.0, True, False, "halted"),  # the durable halt holds after a recovery
        (False, 190.0, True, False, "disabled"),
        (False, 190.0, True, True, "stopped"),
    ],
)
def test_trading_state(
    enabled: bool, equity: float, halted: bool, emergency: bool, state: str
) -> None:
    config = agent(["XAUUSD"], per_trade=0.01, max_positions=1, enabled=enabled)
    agent_book = book(config, 200, equity=equity, start=200, halted=halted)
    ctx = context(("a", agent_book), emergency=emergency)
    assert trading_state(ctx, "a") == state


# Nova (start 1000, limit 50.00) holds a buy risking 1.50 from the bid (opened at 2650.30,
# SL 2648.50) and has an order in flight risking 1.00 from its entry to its SL.
HELD = position("XAUUSD", "buy", 0.01, 2650.30, 2648.50)
FLYING = pending("XAUUSD", "buy", 0.01, 2649.30, 2650.30)


def test_agent_risk_summary_shows_loss_open_and_pending_risk_and_headroom() -> None:
    ctx = context(
        (
            "agent_3",
            book(NOVA, 1000, equity=990.5, start=1000.1, positions=[HELD], pending=[FLYING]),
        )
    )
    assert agent_risk_summary(ctx, "agent_3") == AgentRiskSummary(
        agent_id="agent_3",
        state="active",
        halted=False,
        balance=1000.0,
        equity=990.5,
        start_of_day_equity=1000.1,
        daily_loss_used=9.6,  # 1000.10 - 990.50
        daily_loss_limit=50.0,  # 50.005, floored
        open_risk=1.5,
        pending_risk=1.0,
        daily_headroom=37.9,  # 50.005 - 9.60 - 1.50 - 1.00 = 37.905, floored
        positions_used=2,
        positions_limit=3,
    )


@pytest.mark.parametrize(
    ("equity", "halted", "used", "headroom", "state"),
    [
        (1010.0, False, 0.0, 47.5, "active"),  # a winning day: no loss, no extra headroom
        (1010.0, True, 0.0, 47.5, "halted"),  # the durable halt, equity recovered
        (950.0, False, 50.0, 0.0, "halted"),  # halted by the loss now; headroom never below 0
    ],
)
def test_agent_risk_summary_loss_is_floored_at_zero_and_halt_is_durable(
    equity: float, halted: bool, used: float, headroom: float, state: str
) -> None:
    agent_book = book(
        NOVA, 1000, equity=equity, start=1000, positions=[HELD], pending=[FLYING], halted=halted
    )
    summary = agent_risk_summary(context(("agent_3", agent_book)), "agent_3")
    assert (summary.daily_loss_used, summary.daily_headroom) == (used, headroom)
    assert (summary.halted, summary.state) == (halted, state)


def test_exposure_summary_spans_all_agents() -> None:
    held = position("XAUUSD", "buy", 0.1, 2645.0, 2640.0)
    ctx = context(
        ("agent_1", book(ATLAS, 200, positions=[held])),
        ("agent_3", book(NOVA, 1000, pending=[FLYING])),
    )
    assert exposure_summary(ctx) == ExposureSummary(
        open_risk=100.0,
        pending_risk=1.0,
        total_equity=1200.0,
        limit=120.0,
        max_total_exposure=0.1,
        emergency_stop=False,
    )
