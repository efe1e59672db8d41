"""Checks for changes to open positions: closes always pass, modifies only when adding risk.

A modify uses the bridge's (and MT4's) convention: ``None`` keeps a level unchanged,
``0`` removes it, any other value is the new level. A new SL or
TP level must be on its correct side of the current price (``sl_side``/``tp_side``),
like on an open. Moving the SL towards or beyond the entry (in the position's
favour), adding a missing SL or changing only the TP reduces or keeps the risk and
is then always allowed. Widening the SL or removing it adds risk: it must pass
``emergency_stop`` and ``enabled`` like a new trade, removing needs
``risk.require_sl: false`` (else ``sl_required``), and the loss from the open price
to the new SL must fit ``max_risk_per_trade`` x balance.
"""

from __future__ import annotations

from hub.bridge.models import Action, Position
from hub.risk._money import cents, loss_in_quote, stop_level, to_account
from hub.risk._rules import (
    emergency_denial,
    enabled_denial,
    max_risk_denial,
    sl_side_denial,
    tp_side_denial,
)
from hub.risk.context import RiskContext
from hub.risk.decision import RiskDecision, allow, deny

__all__ = ["check_close", "check_modify"]


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
    if new_sl is None:
        if book.config.risk.require_sl:
            return deny(
                "sl_required",
                f"removing the sl of ticket {position.ticket} is not allowed "
                f"(risk.require_sl: true for {agent_id})",
                limit=True,
                value=None,
            )
        return allow(
            f"sl of ticket {position.ticket} removed (risk.require_sl: false)",
            risk=cents(book.per_trade_budget),
        )
    if spec is None or quote is None:
        return deny("price", f"no current price for {position.symbol}: cannot check a wider sl")
    loss = loss_in_quote(position.action, position.lots, spec, position.open_price, new_sl)
    loss = max(0.0, loss)
    risk = to_account(
        loss, position.symbol, spec, book.config.currency, ctx.prices, position.open_price
    )
    if risk is None:
        return deny("price", f"no price to convert {spec.quote_currency} risk on {position.symbol}")
    denial = max_risk_denial(risk, book, f"sl {new_sl} on ticket {position.ticket}")
    if denial is not None:
        return denial
    risk_pct = round(100 * risk / book.balance, 3) if book.balance > 0 else None
    return allow(
        f"wider sl on ticket {position.ticket} risks {risk:.2f}, within the per-trade limit",
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
