"""Checks for changes to open positions: closes always pass, modifies only when adding risk.

A modify uses the bridge's (and MT4's) convention: ``None`` keeps a level unchanged,
``0`` removes it, any other value is the new level. A new SL or TP level must be on its
correct side of the current price (``sl_side``/``tp_side``), like on an open. Moving the
SL towards or beyond the entry (tightening), adding a missing SL or changing only the TP
reduces or keeps the risk and is then always allowed.

Widening the SL (or removing it) adds risk and is checked like a new order for that
added risk, in this order: ``emergency_stop``, ``enabled``, ``sl_required`` (removing
needs ``risk.require_sl: false``), ``daily_loss`` (halted), ``price`` (a wider SL needs
a quote and a contract spec), ``max_risk_per_trade`` (the position's risk from the
current exit price to the new SL, a removed SL at the per-trade budget),
``daily_loss`` (loss today + the agent's open risk with the position at its new SL +
its pending orders <= the daily limit) and ``max_total_exposure`` (likewise over every
agent).
"""

from __future__ import annotations

import msgspec

from hub.bridge.models import Action, Position
from hub.risk._money import book_risk, cents, exit_price, risk_to_stop, stop_level
from hub.risk._rules import (
    daily_headroom_denial,
    emergency_denial,
    enabled_denial,
    exposure_denial,
    halted_denial,
    max_risk_denial,
    sl_side_denial,
    tp_side_denial,
)
from hub.risk.context import RiskContext
from hub.risk.decision import RiskDecision, allow, deny

__all__ = ["MODIFY_CHECKS", "check_close", "check_modify"]

MODIFY_CHECKS = (
    "sl_side",
    "tp_side",
    "emergency_stop",
    "enabled",
    "sl_required",
    "daily_loss",
    "price",
    "max_risk_per_trade",
    "daily_loss",
    "max_total_exposure",
)
"""The checks of :func:`check_modify` in order; all but the side checks only on a widening.
``daily_loss`` appears twice: the halt comes first, the headroom after the per-trade limit."""


def check_close() -> RiskDecision:
    """Closing (all or part of) a position reduces risk: always allowed, even when halted."""
    return allow("closes are always allowed")


def check_modify(
    ctx: RiskContext, agent_id: str, position: Position, *, sl: float | None, tp: float | None
) -> RiskDecision:
    """Check modifying ``position``'s stops: ``None`` keeps a level, ``0`` removes it."""
    book = ctx.book(agent_id)
    spec, quote = ctx.specs.get(position.symbol), ctx.prices.get(position.symbol)
    old_sl, old_tp = stop_level(position.sl), stop_level(position.tp)
    new_sl = old_sl if sl is None else stop_level(sl)
    new_tp = old_tp if tp is None else stop_level(tp)
    digits = spec.digits if spec is not None else 5
    if quote is not None:
        if new_sl != old_sl:
            denial = sl_side_denial(position.action, new_sl, quote, digits)
            if denial is not None:
                return denial
        if new_tp != old_tp:
            denial = tp_side_denial(position.action, new_tp, quote, digits)
            if denial is not None:
                return denial
    if not _widens(position.action, old_sl, new_sl):
        return allow(f"modify of ticket {position.ticket} does not add risk")
    denial = emergency_denial(ctx) or enabled_denial(agent_id, book)
    if denial is not None:
        return denial
    what = f"sl {new_sl} on ticket {position.ticket}"
    if new_sl is None:
        if book.config.risk.require_sl:
            return deny(
                "sl_required",
                f"removing the sl of ticket {position.ticket} is not allowed "
                f"(risk.require_sl: true for {agent_id})",
                limit=True,
                value=None,
            )
        what = f"removing the sl of ticket {position.ticket}"
    denial = halted_denial(agent_id, book)
    if denial is not None:
        return denial
    risk = book.per_trade_budget  # no SL: the per-trade budget, as everywhere
    if new_sl is not None:
        if spec is None or quote is None:
            return deny("price", f"no current price for {position.symbol}: cannot check a wider sl")
        start = exit_price(position.action, quote)
        ccy = book.config.currency
        priced = risk_to_stop(
            position.symbol, position.action, position.lots, spec, start, new_sl, ccy, ctx.prices
        )
        if priced is None:
            return deny(
                "price", f"no price to convert {spec.quote_currency} risk on {position.symbol}"
            )
        risk = priced
    denial = max_risk_denial(risk, book, what)
    if denial is not None:
        return denial
    moved = msgspec.structs.replace(position, sl=new_sl)
    others = [p for p in book.positions if p.ticket != position.ticket]
    mine: tuple[float, float] = book_risk(book, ctx.prices, ctx.specs, [*others, moved])
    denial = daily_headroom_denial(book, what, open_risk=mine[0], pending_risk=mine[1], added=0.0)
    if denial is not None:
        return denial
    held = sum(mine)
    for other_id, other in ctx.agents.items():
        if other_id != agent_id:
            held += sum(book_risk(other, ctx.prices, ctx.specs))
    denial = exposure_denial(ctx, held, 0.0, what)
    if denial is not None:
        return denial
    risk_pct = round(100 * risk / book.balance, 3) if book.balance > 0 else None
    return allow(
        f"{what} risks {risk:.2f} {book.config.currency} from the current price, "
        "within every limit",
        risk=cents(risk),
        risk_pct=risk_pct,
    )


def _widens(action: Action, old_sl: float | None, new_sl: float | None) -> bool:
    """True when the new SL lets the position lose more than the old one."""
    if old_sl is None:
        return False  # no stop before: any stop (or none) is no worse
    if new_sl is None:
        return True
    return new_sl < old_sl if action == "buy" else new_sl > old_sl
