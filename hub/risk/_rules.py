"""Denials shared by the open, modify and sizing checks, and the daily-loss arithmetic.

Money in a denial's ``limit``, ``value`` and message is shown honestly: a limit floored
to cents, a value ceiled to cents (``hub.risk._money.limit_cents``/``value_cents``), so a
refused value never reads as equal to (or below) its limit.
"""

from __future__ import annotations

from hub.bridge.models import Action
from hub.risk._money import EPS, exceeds, limit_cents, value_cents
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
    shown_limit, shown_risk = limit_cents(limit), value_cents(risk)
    return deny(
        "max_risk_per_trade",
        f"{what} risks {shown_risk:.2f} {ccy}, above the per-trade limit {shown_limit:.2f} "
        f"{ccy} ({pct:g}% of balance {book.balance:.2f})",
        limit=shown_limit,
        value=shown_risk,
    )


def halted_denial(agent_id: str, book: AgentBook) -> RiskDecision | None:
    """No new risk while halted: the durable halt of the day, or the loss has reached the
    daily limit right now."""
    if not is_halted(book):
        return None
    ccy, limit, used = book.config.currency, daily_loss_limit(book), daily_loss_used(book)
    shown_limit, shown_used = limit_cents(limit), value_cents(used)
    why = "halted until 00:00 UTC" if book.halted else "halted for the day"
    return deny(
        "daily_loss",
        f"{agent_id} is {why}: lost {shown_used:.2f} {ccy} of the {shown_limit:.2f} {ccy} "
        f"daily limit (start-of-day equity {book.start_of_day_equity:.2f})",
        limit=shown_limit,
        value=shown_used,
    )


def daily_headroom_denial(
    book: AgentBook, what: str, *, open_risk: float, pending_risk: float, added: float
) -> RiskDecision | None:
    """``loss_today + open_risk + pending_risk + added`` must be <= the daily limit.

    ``open_risk``/``pending_risk`` are the agent's positions' and pending orders' risk;
    ``added`` is a new order's risk (0 for a modify, whose new SL is in ``open_risk``).
    """
    limit, used = daily_loss_limit(book), daily_loss_used(book)
    total = used + open_risk + pending_risk + added
    if not exceeds(total, limit):
        return None
    ccy = book.config.currency
    shown_limit, shown_total = limit_cents(limit), value_cents(total)
    parts = (
        f"lost {value_cents(used):.2f}, open risk {value_cents(open_risk):.2f}, "
        f"in flight {value_cents(pending_risk):.2f}"
    )
    if added:
        parts += f", this trade {value_cents(added):.2f}"
    headroom = limit_cents(max(0.0, limit - used - open_risk - pending_risk))
    return deny(
        "daily_loss",
        f"{what} would bring the day's loss and risk to {shown_total:.2f} {ccy} ({parts}), "
        f"past the daily limit {shown_limit:.2f} {ccy} ({headroom:.2f} {ccy} left)",
        limit=shown_limit,
        value=shown_total,
    )


def exposure_denial(ctx: RiskContext, held: float, added: float, what: str) -> RiskDecision | None:
    """``held`` (open + pending risk of every agent) + ``added`` must be <=
    ``max_total_exposure`` x total equity."""
    equity = sum(book.equity for book in ctx.agents.values())
    fraction = ctx.global_risk.max_total_exposure
    limit = fraction * max(equity, 0.0)
    unknown = [f"{agent_id}: {book.unreadable}" for agent_id, book in ctx.agents.items()
               if book.unreadable]  # fmt: skip
    if unknown:  # positions of unknown risk: the limit cannot be shown to hold
        return deny(
            "max_total_exposure",
            f"{what}: the total exposure is unknown: rows of /positions the hub could not "
            f"read ({', '.join(unknown)}) may be open positions, so no risk is added until "
            "their bridges answer them whole",
            limit=limit_cents(limit),
        )
    if not exceeds(held + added, limit):
        return None
    shown_limit, shown_total = limit_cents(limit), value_cents(held + added)
    extra = f" plus {value_cents(added):.2f}" if added else ""
    return deny(
        "max_total_exposure",
        f"{what}: open and in-flight risk of every agent {value_cents(held):.2f}{extra} "
        f"= {shown_total:.2f} exceeds the total exposure limit {shown_limit:.2f} "
        f"({fraction * 100:g}% of total equity {equity:.2f})",
        limit=shown_limit,
        value=shown_total,
    )
