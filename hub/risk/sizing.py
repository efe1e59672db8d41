"""Sizing a signal's order from the agent's per-trade risk budget and the signal's SL."""

from __future__ import annotations

import math

from hub.bridge.models import Action
from hub.risk._money import EPS, cents, entry_price, loss_in_quote, stop_level, to_account
from hub.risk._rules import sl_side_denial
from hub.risk.context import RiskContext
from hub.risk.decision import RiskDecision, allow, deny

__all__ = ["floor_to_step", "size_for_signal"]


def floor_to_step(lots: float, step: float) -> float:
    """Round ``lots`` down to a whole number of ``step`` (tolerating float noise)."""
    return round(math.floor(lots / step + EPS) * step, 8)


def size_for_signal(
    ctx: RiskContext, agent_id: str, symbol: str, action: Action, sl: float | None
) -> RiskDecision:
    """Lots that risk at most ``max_risk_per_trade`` x balance between entry and ``sl``.

    Rounded down to the lot step and clipped to ``max_lots``; under ``min_lots`` it is
    a denial with check ``too_small``. The sized order still goes through
    :func:`check_open`. An accepted decision carries ``lots`` and ``risk``.
    """
    book = ctx.book(agent_id)
    spec, quote = ctx.specs.get(symbol), ctx.prices.get(symbol)
    if spec is None:
        return deny(
            "allowed_symbols",
            f"symbol {symbol} has no contract spec under `symbols:` in the config",
            limit=list(book.config.symbols),
            value=symbol,
        )
    if quote is None:
        return deny("price", f"no current price for {symbol}: cannot size the signal")
    stop = stop_level(sl)
    if stop is None:
        return deny("sl_required", "a signal needs an sl to be sized", limit=True, value=None)
    denial = sl_side_denial(action, stop, quote, spec.digits)
    if denial is not None:
        return denial
    entry = entry_price(action, quote)
    per_lot_quote = loss_in_quote(action, 1.0, spec, entry, stop)
    per_lot = to_account(per_lot_quote, symbol, spec, book.config.currency, ctx.prices)
    if per_lot is None or per_lot <= 0:
        return deny("price", f"no current price to convert {spec.quote_currency} risk on {symbol}")
    budget = book.per_trade_budget
    raw = budget / per_lot
    lots = min(floor_to_step(raw, spec.lot_step), spec.max_lots)
    if lots < spec.min_lots - EPS:
        return deny(
            "too_small",
            f"the budget {budget:.2f} {book.config.currency} buys {raw:.4f} lots of {symbol} "
            f"at this sl, below the minimum {spec.min_lots}",
            limit=spec.min_lots,
            value=round(raw, 4),
        )
    risk = per_lot * lots
    risk_pct = round(100 * risk / book.balance, 3) if book.balance > 0 else None
    return allow(
        f"sized {lots} lots of {symbol}, risking {risk:.2f} {book.config.currency}",
        risk=cents(risk),
        risk_pct=risk_pct,
        lots=lots,
    )
