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
from tests.hub.risk.builders import ATLAS, NOVA, agent, book, context, position


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
