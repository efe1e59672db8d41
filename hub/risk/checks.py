"""The pre-trade pipeline for new positions: small pure checks in a fixed order.

Order (the first denial wins): ``emergency_stop``, ``enabled``, ``allowed_symbols``,
``lots``, ``lot_step``, ``min_lots``, ``max_lots``, ``sl_required``, ``price`` (no
current quote or conversion rate), ``sl_side``, ``tp_side``, ``max_risk_per_trade``,
``max_positions``, ``daily_loss``, ``max_total_exposure``, ``correlation_limit``.

The lots are normalised to the symbol's lot step once its spec is known
(:func:`~hub.risk._money.normalise_lots`); every later check uses them, and an allowed
decision carries them as ``lots``, the quantity to send.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import msgspec

from hub.bridge.models import Position, TradeOrder
from hub.config import SymbolSpec
from hub.risk._money import (
    EPS,
    book_risk,
    cents,
    entry_price,
    normalise_lots,
    risk_to_stop,
    stop_level,
)
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
from hub.risk.context import AgentBook, PendingOrder, Quote, RiskContext
from hub.risk.decision import RiskDecision, allow, deny

# The two gates are re-exported: the trading service answers them even for an offline agent.
__all__ = ["OPEN_CHECKS", "check_open", "emergency_denial", "enabled_denial"]

OPEN_CHECKS = (
    "emergency_stop",
    "enabled",
    "allowed_symbols",
    "lots",
    "lot_step",
    "min_lots",
    "max_lots",
    "sl_required",
    "price",
    "sl_side",
    "tp_side",
    "max_risk_per_trade",
    "max_positions",
    "daily_loss",
    "max_total_exposure",
    "correlation_limit",
)


class _Order(msgspec.Struct, frozen=True, kw_only=True):
    ctx: RiskContext
    agent_id: str
    book: AgentBook
    order: TradeOrder
    lots: float  # normalised to the lot step when the symbol has a spec


class _Priced(msgspec.Struct, frozen=True, kw_only=True):
    o: _Order
    spec: SymbolSpec
    quote: Quote
    entry: float
    sl: float | None
    tp: float | None
    risk: float  # account currency; a trade without SL counts its per-trade budget
    what: str  # "buy 0.01 XAUUSD", for messages
    held: dict[str, tuple[float, float]]  # agent id -> (open, pending) risk, filled lazily


def check_open(ctx: RiskContext, agent_id: str, order: TradeOrder) -> RiskDecision:
    """Run every check on a new position for ``agent_id``; the first denial wins.

    An allowed decision carries ``risk``, ``risk_pct`` and the normalised ``lots``.
    """
    spec = ctx.specs.get(order.symbol)
    lots = order.lots if spec is None else normalise_lots(order.lots, spec)
    o = _Order(ctx=ctx, agent_id=agent_id, book=ctx.book(agent_id), order=order, lots=lots)
    for gate in _GATES:
        denial = gate(o)
        if denial is not None:
            return denial
    priced = _price(o)
    if isinstance(priced, RiskDecision):
        return priced
    for check in _PRICED_CHECKS:
        denial = check(priced)
        if denial is not None:
            return denial
    risk_pct = round(100 * priced.risk / o.book.balance, 3) if o.book.balance > 0 else None
    ccy = o.book.config.currency
    return allow(
        f"risk {priced.risk:.2f} {ccy} ({risk_pct}% of balance) within every limit",
        risk=cents(priced.risk),
        risk_pct=risk_pct,
        lots=o.lots,
    )


# -- gates: need only the config and the order --------------------------------------------


def _emergency_stop(o: _Order) -> RiskDecision | None:
    return emergency_denial(o.ctx)


def _enabled(o: _Order) -> RiskDecision | None:
    return enabled_denial(o.agent_id, o.book)


def _allowed_symbols(o: _Order) -> RiskDecision | None:
    symbol, allowed = o.order.symbol, o.book.config.symbols
    if symbol not in allowed:
        return deny(
            "allowed_symbols",
            f"symbol {symbol} is not traded by {o.agent_id} (allowed: {', '.join(allowed)})",
            limit=list(allowed),
            value=symbol,
        )
    if symbol not in o.ctx.specs:
        return deny(
            "allowed_symbols",
            f"symbol {symbol} has no contract spec under `symbols:` in the config",
            limit=list(allowed),
            value=symbol,
        )
    return None


def _lots(o: _Order) -> RiskDecision | None:
    lots = o.lots
    if lots > 0 and math.isfinite(lots):
        return None
    return deny("lots", f"lots must be a positive number, got {lots}", limit=0.0, value=lots)


def _lot_step(o: _Order) -> RiskDecision | None:
    lots, step = o.lots, o.ctx.specs[o.order.symbol].lot_step
    steps = lots / step
    if abs(steps - round(steps)) <= EPS:
        return None
    return deny(
        "lot_step",
        f"lots {lots} is not a multiple of the lot step {step} for {o.order.symbol}",
        limit=step,
        value=lots,
    )


def _min_lots(o: _Order) -> RiskDecision | None:
    lots, least = o.lots, o.ctx.specs[o.order.symbol].min_lots
    if lots >= least - EPS:
        return None
    return deny(
        "min_lots",
        f"lots {lots} is below the minimum {least} for {o.order.symbol}",
        limit=least,
        value=lots,
    )


def _max_lots(o: _Order) -> RiskDecision | None:
    lots, most = o.lots, o.ctx.specs[o.order.symbol].max_lots
    if lots <= most + EPS:
        return None
    return deny(
        "max_lots",
        f"lots {lots} is above the maximum {most} for {o.order.symbol}",
        limit=most,
        value=lots,
    )


def _sl_required(o: _Order) -> RiskDecision | None:
    if not o.book.config.risk.require_sl or stop_level(o.order.sl) is not None:
        return None
    return deny(
        "sl_required",
        f"sl is required for {o.agent_id} (risk.require_sl: true)",
        limit=True,
        value=None,
    )


_GATES: tuple[Callable[[_Order], RiskDecision | None], ...] = (
    _emergency_stop,
    _enabled,
    _allowed_symbols,
    _lots,
    _lot_step,
    _min_lots,
    _max_lots,
    _sl_required,
)


# -- priced checks: need the current quote and the trade's risk ---------------------------


def _price(o: _Order) -> _Priced | RiskDecision:
    symbol, order = o.order.symbol, o.order
    spec, quote = o.ctx.specs[symbol], o.ctx.prices.get(symbol)
    if quote is None:
        return deny("price", f"no current price for {symbol}: cannot check the order")
    entry = entry_price(order.action, quote)
    sl, tp = stop_level(order.sl), stop_level(order.tp)
    risk: float | None = o.book.per_trade_budget
    if sl is not None:
        currency = o.book.config.currency
        risk = risk_to_stop(symbol, order.action, o.lots, spec, entry, sl, currency, o.ctx.prices)
    if risk is None or not math.isfinite(risk):
        return deny(
            "price",
            f"no current price to convert {spec.quote_currency} risk on {symbol} "
            f"to {o.book.config.currency}",
        )
    what = f"{order.action} {o.lots} {symbol}"
    return _Priced(
        o=o, spec=spec, quote=quote, entry=entry, sl=sl, tp=tp, risk=risk, what=what, held={}
    )


def _held(p: _Priced, agent_id: str) -> tuple[float, float]:
    """``(open, pending)`` risk of ``agent_id``, computed once per check."""
    held = p.held.get(agent_id)
    if held is None:
        ctx = p.o.ctx
        held = p.held[agent_id] = book_risk(ctx.agents[agent_id], ctx.prices, ctx.specs)
    return held


def _sl_side(p: _Priced) -> RiskDecision | None:
    return sl_side_denial(p.o.order.action, p.sl, p.quote, p.spec.digits)


def _tp_side(p: _Priced) -> RiskDecision | None:
    return tp_side_denial(p.o.order.action, p.tp, p.quote, p.spec.digits)


def _max_risk_per_trade(p: _Priced) -> RiskDecision | None:
    return max_risk_denial(p.risk, p.o.book, p.what)


def _max_positions(p: _Priced) -> RiskDecision | None:
    book = p.o.book
    held, flying = len(book.positions), book.in_flight
    limit = book.config.risk.max_positions
    if held + flying + 1 <= limit:
        return None
    return deny(
        "max_positions",
        f"{p.o.agent_id} has {held} open and {flying} in-flight positions; "
        f"one more would exceed max_positions {limit}",
        limit=limit,
        value=held + flying + 1,
    )


def _daily_loss(p: _Priced) -> RiskDecision | None:
    """Halted, or ``loss_today + open + pending + this risk > max_daily_loss x start``."""
    denial = halted_denial(p.o.agent_id, p.o.book)
    if denial is not None:
        return denial
    held, flying = _held(p, p.o.agent_id)
    return daily_headroom_denial(
        p.o.book, p.what, open_risk=held, pending_risk=flying, added=p.risk
    )


def _max_total_exposure(p: _Priced) -> RiskDecision | None:
    held = sum(sum(_held(p, agent_id)) for agent_id in p.o.ctx.agents)
    return exposure_denial(p.o.ctx, held, p.risk, p.what)


def _correlation_limit(p: _Priced) -> RiskDecision | None:
    """Positions and pending orders of every agent in another symbol: refused when the
    correlation (on the trader's bridge if it trades both symbols, else on the holder's)
    is beyond the limit and the new order adds risk the same economic way."""
    lookup = p.o.ctx.correlation
    if lookup is None:
        return None
    symbol, action = p.o.order.symbol, p.o.order.action
    trader, traded = p.o.agent_id, p.o.book.config.symbols
    bound = p.o.ctx.global_risk.correlation_limit + EPS
    for holder, book in p.o.ctx.agents.items():
        holdings: tuple[Position | PendingOrder, ...] = (*book.positions, *book.pending)
        for held in holdings:
            if held.symbol == symbol:
                continue  # stacking one symbol is max_positions' and exposure's business
            bridge = trader if held.symbol in traded else holder
            corr = lookup(bridge, symbol, held.symbol)
            if corr is not None and abs(corr) > bound and (held.action == action) == (corr > 0):
                return _correlation_denial(p, holder, held, bridge, corr)
    return None


def _correlation_denial(
    p: _Priced, holder: str, held: Position | PendingOrder, bridge: str, corr: float
) -> RiskDecision:
    order, limit = p.o.order, p.o.ctx.global_risk.correlation_limit
    # Shown rounded away from zero to 4 decimals: beyond the limit never reads as at it.
    shown = math.copysign(math.ceil(abs(corr) * 10_000 - 0.5 * EPS) / 10_000, corr)
    if isinstance(held, Position):
        what = f"open {held.action} {held.symbol} (ticket {held.ticket})"
    else:
        what = f"in-flight {held.action} {held.symbol}"
    return deny(
        "correlation_limit",
        f"{order.action} {order.symbol} adds to {holder}'s {what}, correlated "
        f"{shown:+.4f} on {bridge}'s quotes beyond the limit {limit:g}",
        limit=limit,
        value=shown,
    )


_PRICED_CHECKS: tuple[Callable[[_Priced], RiskDecision | None], ...] = (
    _sl_side,
    _tp_side,
    _max_risk_per_trade,
    _max_positions,
    _daily_loss,
    _max_total_exposure,
    _correlation_limit,
)
