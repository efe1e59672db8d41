"""Read-only views for ``GET /api/risk`` and status: trading state, per-agent and global numbers."""

from __future__ import annotations

from typing import Literal

import msgspec

from hub.risk._money import cents, open_risk
from hub.risk._rules import daily_loss_limit, daily_loss_used, is_halted
from hub.risk.context import AgentBook, RiskContext

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
    balance: float
    equity: float
    start_of_day_equity: float
    daily_loss_used: float  # money lost since the start of the UTC day (0 on a winning day)
    daily_loss_limit: float  # money
    open_risk: float  # money to the SLs of the agent's open positions
    positions_used: int  # open + in flight
    positions_limit: int


class ExposureSummary(msgspec.Struct, frozen=True, kw_only=True):
    open_risk: float  # money to the SLs over all agents
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


def _book_risk(ctx: RiskContext, book: AgentBook) -> float:
    return open_risk(
        book.positions,
        ctx.prices,
        ctx.specs,
        no_sl_risk=book.per_trade_budget,
        currency=book.config.currency,
    )


def agent_risk_summary(ctx: RiskContext, agent_id: str) -> AgentRiskSummary:
    book = ctx.book(agent_id)
    return AgentRiskSummary(
        agent_id=agent_id,
        state=trading_state(ctx, agent_id),
        balance=cents(book.balance),
        equity=cents(book.equity),
        start_of_day_equity=cents(book.start_of_day_equity),
        daily_loss_used=cents(max(0.0, daily_loss_used(book))),
        daily_loss_limit=cents(daily_loss_limit(book)),
        open_risk=cents(_book_risk(ctx, book)),
        positions_used=len(book.positions) + book.in_flight,
        positions_limit=book.config.risk.max_positions,
    )


def exposure_summary(ctx: RiskContext) -> ExposureSummary:
    equity = sum(book.equity for book in ctx.agents.values())
    fraction = ctx.global_risk.max_total_exposure
    return ExposureSummary(
        open_risk=cents(sum(_book_risk(ctx, book) for book in ctx.agents.values())),
        total_equity=cents(equity),
        limit=cents(fraction * max(equity, 0.0)),
        max_total_exposure=fraction,
        emergency_stop=ctx.emergency_stop,
    )
