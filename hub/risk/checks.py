"""The pre-trade pipeline for new positions: small pure checks in a fixed order.

Order (the first denial wins): ``emergency_stop``, ``enabled``, ``allowed_symbols``,
``lots``, ``lot_step``, ``min_lots``, ``max_lots``, ``sl_required``, ``price`` (no
current quote or conversion rate), ``sl_side``, ``tp_side``, ``max_risk_per_trade``,
``max_positions``, ``daily_loss``, ``max_total_exposure``, ``correlation_limit``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import msgspec

from hub.bridge.models import TradeOrder
from hub.config import SymbolSpec
from hub.risk._money import (
    EPS,
    cents,
    entry_price,
    exceeds,
    loss_in_quote,
    open_risk,
    stop_level,
    to_account,
)
from hub.risk._rules import (
    daily_loss_limit,
    daily_loss_used,
    emergency_denial,
    enabled_denial,
    is_halted,
    max_risk_denial,
    sl_side_denial,
    tp_side_denial,
)
from hub.risk.context import AgentBook, Quote, RiskContext
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


class _Priced(msgspec.Struct, frozen=True, kw_only=True):
    o: _Order
    spec: SymbolSpec
    quote: Quote
    entry: float
    sl: float | None
    tp: float | None
    risk: float  # account currency; a trade without SL counts its per-trade budget


def check_open(ctx: RiskContext, agent_id: str, order: TradeOrder) -> RiskDecision:
    """Run every check on a new position for ``agent_id``; the first denial wins."""
    o = _Order(ctx=ctx, agent_id=agent_id, book=ctx.book(agent_id), order=order)
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
    lots = o.order.lots
    if lots > 0 and math.isfinite(lots):
        return None
    return deny("lots", f"lots must be a positive number, got {lots}", limit=0.0, value=lots)


def _lot_step(o: _Order) -> RiskDecision | None:
    lots, step = o.order.lots, o.ctx.specs[o.order.symbol].lot_step
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
    lots, least = o.order.lots, o.ctx.specs[o.order.symbol].min_lots
    if lots >= least - EPS:
        return None
    return deny(
        "min_lots",
        f"lots {lots} is below the minimum {least} for {o.order.symbol}",
        limit=least,
        value=lots,
    )


def _max_lots(o: _Order) -> RiskDecision | None:
    lots, most = o.order.lots, o.ctx.specs[o.order.symbol].max_lots
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
        loss = max(0.0, loss_in_quote(order.action, order.lots, spec, entry, sl))
        risk = to_account(loss, symbol, spec, o.book.config.currency, o.ctx.prices)
    if risk is None or not math.isfinite(risk):
        return deny(
            "price",
            f"no current price to convert {spec.quote_currency} risk on {symbol} "
            f"to {o.book.config.currency}",
        )
    return _Priced(o=o, spec=spec, quote=quote, entry=entry, sl=sl, tp=tp, risk=risk)


def _sl_side(p: _Priced) -> RiskDecision | None:
    return sl_side_denial(p.o.order.action, p.sl, p.quote, p.spec.digits)


def _tp_side(p: _Priced) -> RiskDecision | None:
    return tp_side_denial(p.o.order.action, p.tp, p.quote, p.spec.digits)


def _max_risk_per_trade(p: _Priced) -> RiskDecision | None:
    order = p.o.order
    return max_risk_denial(p.risk, p.o.book, f"{order.action} {order.lots} {order.symbol}")


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
    book, ccy = p.o.book, p.o.book.config.currency
    limit, used = daily_loss_limit(book), daily_loss_used(book)
    if is_halted(book):
        return deny(
            "daily_loss",
            f"{p.o.agent_id} is halted for the day: lost {used:.2f} {ccy} of the "
            f"{limit:.2f} {ccy} daily limit (start-of-day equity {book.start_of_day_equity:.2f})",
            limit=cents(limit),
            value=cents(used),
        )
    if not exceeds(used + p.risk, limit):
        return None
    return deny(
        "daily_loss",
        f"risk {p.risk:.2f} {ccy} would take the day's loss to {used + p.risk:.2f} {ccy}, "
        f"past the daily limit {limit:.2f} {ccy} ({limit - used:.2f} left)",
        limit=cents(limit),
        value=cents(used + p.risk),
    )


def _max_total_exposure(p: _Priced) -> RiskDecision | None:
    ctx = p.o.ctx
    held = sum(
        open_risk(
            book.positions,
            ctx.prices,
            ctx.specs,
            no_sl_risk=book.per_trade_budget,
            currency=book.config.currency,
        )
        for book in ctx.agents.values()
    )
    equity = sum(book.equity for book in ctx.agents.values())
    fraction = ctx.global_risk.max_total_exposure
    limit = fraction * max(equity, 0.0)
    if not exceeds(held + p.risk, limit):
        return None
    return deny(
        "max_total_exposure",
        f"open risk {held:.2f} plus this trade's {p.risk:.2f} exceeds the total exposure "
        f"limit {limit:.2f} ({fraction * 100:g}% of total equity {equity:.2f})",
        limit=cents(limit),
        value=cents(held + p.risk),
    )


def _correlation_limit(p: _Priced) -> RiskDecision | None:
    ctx, order = p.o.ctx, p.o.order
    if ctx.correlation is None:
        return None
    limit = ctx.global_risk.correlation_limit
    for agent_id, book in ctx.agents.items():
        for pos in book.positions:
            if pos.symbol == order.symbol:
                continue  # stacking one symbol is max_positions' and exposure's business
            corr = ctx.correlation(order.symbol, pos.symbol)
            if corr is None or abs(corr) <= limit + EPS:
                continue
            same_way = (pos.action == order.action) == (corr > 0)
            if same_way:
                return deny(
                    "correlation_limit",
                    f"{order.action} {order.symbol} adds to {agent_id}'s open {pos.action} "
                    f"{pos.symbol} (ticket {pos.ticket}), correlated {corr:+.2f} beyond "
                    f"the limit {limit:g}",
                    limit=limit,
                    value=round(corr, 4),
                )
    return None


_PRICED_CHECKS: tuple[Callable[[_Priced], RiskDecision | None], ...] = (
    _sl_side,
    _tp_side,
    _max_risk_per_trade,
    _max_positions,
    _daily_loss,
    _max_total_exposure,
    _correlation_limit,
)
