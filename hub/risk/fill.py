"""The check after a fill: the risk recomputed at the fill price, and how to bring it back.

Slippage (or a bridge whose own feed froze) can fill an order at a price where its SL
risks more than the pre-trade checks allowed. :func:`check_fill` measures that risk from
the position's ``open_price`` (the fill) to its SL and holds it against each limit a new
order is checked against, beyond ``risk.slippage_tolerance``:

- ``max_risk_per_trade``: risk > budget x (1 + tolerance);
- ``daily_loss``: loss_today + the agent's other open risk + risk > daily limit x (1 + tolerance);
- ``max_total_exposure``: every agent's other open risk + risk > exposure limit x (1 + tolerance).

A breach is a :class:`FillBreach` naming the first limit crossed, with the room the limits
leave the position (the smallest of the three) and the SL level at which its risk equals
that room (rounded to the symbol's digits towards the entry, so never more), or None when
no such level is on the valid side of the current price and the caller closes instead.
Other positions count from the current price to their SL (their floating P/L is in the
equity); in-flight orders of other commands are not counted: whichever fills last is the
one that crossed.
"""

from __future__ import annotations

import math

import msgspec

from hub.bridge.models import Position
from hub.config import SymbolSpec
from hub.risk._money import (
    book_risk,
    exceeds,
    limit_cents,
    risk_to_stop,
    stop_level,
    to_account,
    value_cents,
)
from hub.risk._rules import daily_loss_limit, daily_loss_used
from hub.risk.context import AgentBook, RiskContext

__all__ = ["FillBreach", "check_fill"]


class FillBreach(msgspec.Struct, frozen=True, kw_only=True):
    """A filled position risking more than a limit leaves it.

    ``check`` names the limit crossed (``max_risk_per_trade``, ``daily_loss`` or
    ``max_total_exposure``). ``risk`` (from the fill price to the SL) and ``limit`` (what
    every limit together still lets this position risk) are in the account currency,
    unrounded; ``message`` shows them honestly (values ceiled, limits floored to cents).
    ``tightened_sl`` is the SL that brings the risk down to ``limit``, None when it would
    not be on the valid side of the current price (or there is none).
    """

    risk: float
    limit: float
    tightened_sl: float | None
    check: str = "max_risk_per_trade"
    message: str = ""


def check_fill(
    ctx: RiskContext, agent_id: str, position: Position, tolerance: float
) -> FillBreach | None:
    """The breach of ``position`` (just filled for ``agent_id``), or None when every limit
    holds within ``tolerance`` (exactly at it passes).

    A position without SL, or whose risk cannot be priced (no contract spec, no conversion
    rate), is not a breach: a missing SL counts the budget by convention, and the pre-trade
    checks required a spec and a rate.
    """
    book = ctx.book(agent_id)
    spec, sl = ctx.specs.get(position.symbol), stop_level(position.sl)
    if spec is None or sl is None:
        return None
    risk = _risk_at(ctx, book, position, spec, sl)
    if risk is None:
        return None
    rooms = _rooms(ctx, agent_id, position)
    crossed = next(
        (
            (check, limit, room)
            for check, limit, room in rooms
            if exceeds(risk, room + limit * tolerance)
        ),
        None,
    )
    if crossed is None:
        return None
    check, limit, room = crossed
    allowed = max(0.0, min(room for _, _, room in rooms))
    ccy = book.config.currency
    what = (
        f"ticket {position.ticket} filled at {position.open_price} risks "
        f"{value_cents(risk):.2f} {ccy} to its sl {sl}"
    )
    if check == "max_risk_per_trade":
        why = f"above the per-trade limit {limit_cents(limit):.2f} {ccy}"
    else:
        name = "daily limit" if check == "daily_loss" else "total exposure limit"
        why = (
            f"with the rest {value_cents(limit - room + risk):.2f} {ccy}, above the "
            f"{name} {limit_cents(limit):.2f} {ccy} ({limit_cents(max(room, 0.0)):.2f} {ccy} left)"
        )
    return FillBreach(
        risk=risk,
        limit=allowed,
        check=check,
        tightened_sl=_tightened_sl(ctx, book, position, spec, allowed),
        message=f"{what}, {why} by more than {tolerance * 100:g}%",
    )


def _rooms(ctx: RiskContext, agent_id: str, position: Position) -> list[tuple[str, float, float]]:
    """``(check, limit, room)`` per limit: what the limit leaves ``position`` to risk."""
    rooms: list[tuple[str, float, float]] = []
    book = ctx.book(agent_id)
    budget = book.per_trade_budget
    rooms.append(("max_risk_per_trade", budget, budget))
    held: dict[str, float] = {}
    for book_id, other in ctx.agents.items():
        positions = [
            p for p in other.positions if book_id != agent_id or p.ticket != position.ticket
        ]
        held[book_id] = book_risk(other, ctx.prices, ctx.specs, positions)[0]
    daily = daily_loss_limit(book)
    rooms.append(("daily_loss", daily, daily - daily_loss_used(book) - held[agent_id]))
    equity = sum(b.equity for b in ctx.agents.values())
    exposure = ctx.global_risk.max_total_exposure * max(equity, 0.0)
    rooms.append(("max_total_exposure", exposure, exposure - sum(held.values())))
    return rooms


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
