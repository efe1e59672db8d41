"""The check after a fill: the risk recomputed at the fill price, and how to bring it back.

Slippage (or a bridge whose own feed froze) can fill an order at a price where its SL
risks more than the per-trade budget. :func:`check_fill` measures that risk from the
position's ``open_price`` (the fill) to its SL; above ``budget x (1 + tolerance)`` it is a
:class:`FillBreach`, carrying the SL level at which the risk equals the budget (rounded to
the symbol's digits towards the entry, so never more than the budget), or None when that
level is not on the valid side of the current price, and the caller closes instead.
"""

from __future__ import annotations

import math

import msgspec

from hub.bridge.models import Position
from hub.config import SymbolSpec
from hub.risk._money import exceeds, limit_cents, risk_to_stop, stop_level, to_account, value_cents
from hub.risk.context import AgentBook, RiskContext

__all__ = ["FillBreach", "check_fill"]


class FillBreach(msgspec.Struct, frozen=True, kw_only=True):
    """A filled position risking more than its agent's per-trade budget allows.

    ``risk`` (from the fill price to the SL) and ``limit`` (the per-trade budget) are in the
    account currency, unrounded; ``message`` shows them honestly (risk ceiled, limit
    floored to cents). ``tightened_sl`` is the SL that brings the risk down to the budget,
    None when it would not be on the valid side of the current price (or there is none).
    """

    risk: float
    limit: float
    tightened_sl: float | None
    message: str = ""


def check_fill(
    ctx: RiskContext, agent_id: str, position: Position, tolerance: float
) -> FillBreach | None:
    """The breach of ``position`` (just filled for ``agent_id``), or None within
    ``budget x (1 + tolerance)`` (exactly at it passes).

    A position without SL, or whose risk cannot be priced (no contract spec, no conversion
    rate), is not a breach: a missing SL counts the budget by convention, and the pre-trade
    checks required a spec and a rate.
    """
    book = ctx.book(agent_id)
    spec, sl = ctx.specs.get(position.symbol), stop_level(position.sl)
    if spec is None or sl is None:
        return None
    risk = _risk_at(ctx, book, position, spec, sl)
    budget = book.per_trade_budget
    if risk is None or not exceeds(risk, budget * (1 + tolerance)):
        return None
    ccy = book.config.currency
    return FillBreach(
        risk=risk,
        limit=budget,
        tightened_sl=_tightened_sl(ctx, book, position, spec, budget),
        message=(
            f"ticket {position.ticket} filled at {position.open_price} risks "
            f"{value_cents(risk):.2f} {ccy} to its sl {sl}, above the per-trade limit "
            f"{limit_cents(budget):.2f} {ccy} by more than {tolerance * 100:g}%"
        ),
    )


def _risk_at(
    ctx: RiskContext, book: AgentBook, position: Position, spec: SymbolSpec, sl: float
) -> float | None:
    """Money lost from the fill price to ``sl``."""
    entry = position.open_price
    return risk_to_stop(
        position.symbol,
        position.action,
        position.lots,
        spec,
        entry,
        sl,
        book.config.currency,
        ctx.prices,
        entry,
    )


def _tightened_sl(
    ctx: RiskContext, book: AgentBook, position: Position, spec: SymbolSpec, budget: float
) -> float | None:
    """The SL at which the risk from the fill equals ``budget``, rounded to ``digits``
    towards the entry; None when it is not strictly beyond the current exit price (a buy's
    SL below the bid, a sell's above the ask) or cannot be computed."""
    entry, buy = position.open_price, position.action == "buy"
    rate = to_account(
        1.0, position.symbol, spec, book.config.currency, ctx.prices, position.open_price
    )
    per_price = position.lots * spec.contract_size * (rate or 0.0)  # money per 1.0 of price
    quote = ctx.prices.get(position.symbol)
    if per_price <= 0 or budget <= 0 or quote is None:
        return None
    raw = entry - budget / per_price if buy else entry + budget / per_price
    scale, point = 10**spec.digits, 10.0**-spec.digits
    # Towards the entry: up for a buy, down for a sell (float noise of 1e-6 point tolerated).
    level = math.ceil(raw * scale - 1e-6) / scale if buy else math.floor(raw * scale + 1e-6) / scale
    risk = _risk_at(ctx, book, position, spec, level)
    if risk is not None and exceeds(risk, budget):  # noise pushed it past: one point closer
        level = level + point if buy else level - point
    level = round(level, spec.digits)
    valid = level < quote.bid if buy else level > quote.ask
    return level if valid else None
