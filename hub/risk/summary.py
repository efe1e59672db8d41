"""Read-only views for ``GET /api/risk`` and status: trading state, per-agent and global numbers.

Money is shown as the checks show it: limits and headroom floored to cents, amounts used
or at risk ceiled to cents, so a view never promises a cent the checks would refuse.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from hub.risk._money import book_risk, cents, limit_cents, value_cents
from hub.risk._rules import daily_loss_limit, daily_loss_used, is_halted
from hub.risk.context import RiskContext

__all__ = [
    "AgentRiskSummary",
    "ExposureSummary",
    "TradingState",
    "agent_risk_summary",
    "exposure_summary",
    "trading_state",
]

TradingState = Literal["active", "halted", "disabled", "stopped"]


class AgentRiskSummary(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: str
    state: TradingState
    halted: bool  # the durable halt of the day (until 00:00 UTC or an admin lifts it)
    balance: float
    equity: float
    start_of_day_equity: float
    daily_loss_used: float  # loss_today: max(0, start-of-day equity - equity)
    daily_loss_limit: float  # money
    open_risk: float  # money from current prices to the SLs of the agent's open positions
    pending_risk: float  # money from entry to SL of its orders reserved or in flight
    daily_headroom: float  # limit - loss_today - open - pending, never below 0
    positions_used: int  # open + in flight
    positions_limit: int


class ExposureSummary(msgspec.Struct, frozen=True, kw_only=True):
    open_risk: float  # money to the SLs over all agents' open positions
    pending_risk: float  # money to the SLs over all agents' pending orders
    total_equity: float
    limit: float  # max_total_exposure x total equity, money
    max_total_exposure: float  # the configured fraction
    emergency_stop: bool


def trading_state(ctx: RiskContext, agent_id: str) -> TradingState:
    """``stopped`` (emergency stop) > ``disabled`` > ``halted`` (daily loss) > ``active``."""
    book = ctx.book(agent_id)
    if ctx.emergency_stop:
        return "stopped"
    if not book.config.enabled:
        return "disabled"
    if is_halted(book):
        return "halted"
    return "active"


def agent_risk_summary(ctx: RiskContext, agent_id: str) -> AgentRiskSummary:
    book = ctx.book(agent_id)
    held, flying = book_risk(book, ctx.prices, ctx.specs)
    limit, used = daily_loss_limit(book), daily_loss_used(book)
    return AgentRiskSummary(
        agent_id=agent_id,
        state=trading_state(ctx, agent_id),
        halted=book.halted,
        balance=cents(book.balance),
        equity=cents(book.equity),
        start_of_day_equity=cents(book.start_of_day_equity),
        daily_loss_used=value_cents(used),
        daily_loss_limit=limit_cents(limit),
        open_risk=value_cents(held),
        pending_risk=value_cents(flying),
        daily_headroom=limit_cents(max(0.0, limit - used - held - flying)),
        positions_used=len(book.positions) + book.in_flight,
        positions_limit=book.config.risk.max_positions,
    )


def exposure_summary(ctx: RiskContext) -> ExposureSummary:
    equity = sum(book.equity for book in ctx.agents.values())
    fraction = ctx.global_risk.max_total_exposure
    risks = [book_risk(book, ctx.prices, ctx.specs) for book in ctx.agents.values()]
    return ExposureSummary(
        open_risk=value_cents(sum(held for held, _ in risks)),
        pending_risk=value_cents(sum(flying for _, flying in risks)),
        total_equity=cents(equity),
        limit=limit_cents(fraction * max(equity, 0.0)),
        max_total_exposure=fraction,
        emergency_stop=ctx.emergency_stop,
    )
