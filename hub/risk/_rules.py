"""Denials shared by the open, modify and sizing checks, and the daily-loss arithmetic."""

from __future__ import annotations

from hub.bridge.models import Action
from hub.risk._money import EPS, cents, exceeds
from hub.risk.context import AgentBook, Quote, RiskContext
from hub.risk.decision import RiskDecision, deny


def daily_loss_limit(book: AgentBook) -> float:
    """``max_daily_loss`` x start-of-day equity, in money."""
    return book.config.risk.max_daily_loss * book.start_of_day_equity


def daily_loss_used(book: AgentBook) -> float:
    """``loss_today``: start-of-day equity minus equity now, never below 0 (a winning day
    adds no headroom)."""
    return max(0.0, book.start_of_day_equity - book.equity)


def is_halted(book: AgentBook) -> bool:
    """Halted for the day (durably, even if equity recovered), or the loss has reached
    ``max_daily_loss`` x start-of-day equity right now."""
    return book.halted or daily_loss_used(book) >= daily_loss_limit(book) - EPS


def emergency_denial(ctx: RiskContext) -> RiskDecision | None:
    if not ctx.emergency_stop:
        return None
    return deny(
        "emergency_stop",
        "emergency stop is active: every new trade is rejected until an admin resumes",
        limit=False,
        value=True,
        code="emergency_stop",
    )


def enabled_denial(agent_id: str, book: AgentBook) -> RiskDecision | None:
    if book.config.enabled:
        return None
    return deny(
        "enabled",
        f"agent {agent_id} is disabled (enabled: false): new trades are rejected",
        limit=True,
        value=False,
        code="agent_disabled",
    )


def sl_side_denial(
    action: Action, sl: float | None, quote: Quote, digits: int
) -> RiskDecision | None:
    """A buy's SL must be below the bid, a sell's above the ask (MT4)."""
    if sl is None:
        return None
    if action == "buy" and sl < quote.bid:
        return None
    if action == "sell" and sl > quote.ask:
        return None
    if action == "buy":
        bound, side, name = quote.bid, "below", "bid"
    else:
        bound, side, name = quote.ask, "above", "ask"
    return deny(
        "sl_side",
        f"sl {sl:.{digits}f} must be {side} the {name} {bound:.{digits}f} for a {action}",
        limit=round(bound, digits),
        value=sl,
    )


def tp_side_denial(
    action: Action, tp: float | None, quote: Quote, digits: int
) -> RiskDecision | None:
    """A buy's TP must be above the ask, a sell's below the bid (MT4)."""
    if tp is None:
        return None
    if action == "buy" and tp > quote.ask:
        return None
    if action == "sell" and tp < quote.bid:
        return None
    if action == "buy":
        bound, side, name = quote.ask, "above", "ask"
    else:
        bound, side, name = quote.bid, "below", "bid"
    return deny(
        "tp_side",
        f"tp {tp:.{digits}f} must be {side} the {name} {bound:.{digits}f} for a {action}",
        limit=round(bound, digits),
        value=tp,
    )


def max_risk_denial(risk: float, book: AgentBook, what: str) -> RiskDecision | None:
    """``risk`` (account currency) must be <= max_risk_per_trade x balance."""
    limit = book.per_trade_budget
    if not exceeds(risk, limit):
        return None
    ccy, pct = book.config.currency, book.config.risk.max_risk_per_trade * 100
    return deny(
        "max_risk_per_trade",
        f"{what} risks {risk:.2f} {ccy}, above the per-trade limit {limit:.2f} {ccy} "
        f"({pct:g}% of balance {book.balance:.2f})",
        limit=cents(limit),
        value=cents(risk),
    )
