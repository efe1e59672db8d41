"""Money math shared by the checks and the summaries: lots, prices, conversion, risk to a
stop, and how money is shown.

Stops follow MT4: ``None`` or ``0`` means "no stop". Risk is converted from the
symbol's quote currency to the account currency with current mid prices: a quote
equal to the account currency is taken as is; for a pair whose base is the account
currency (USDJPY for a USD account) the amount is divided by that pair's price;
otherwise a ``{account}{quote}`` pair divides and a ``{quote}{account}`` pair multiplies.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from hub.bridge.models import Action, Position
from hub.config import SymbolSpec
from hub.risk.context import AgentBook, PendingOrder, Quote

EPS = 1e-6
"""Tolerance for money and lot comparisons: exactly at a limit passes, a cent over fails."""

_SHOWN_EPS = EPS / 2
"""Float-noise tolerance of :func:`limit_cents` and :func:`value_cents`: half of ``EPS``
each, so that together they never exceed the comparison's tolerance (a refused value is
always shown above its limit)."""


def exceeds(value: float, limit: float) -> bool:
    return value > limit + EPS


def cents(amount: float) -> float:
    return round(amount, 2) + 0.0  # + 0.0 turns -0.0 into 0.0


def limit_cents(amount: float) -> float:
    """A limit as shown: floored to cents (1.797 -> 1.79), so it never reads higher than it is."""
    return math.floor((amount + _SHOWN_EPS) * 100) / 100 + 0.0


def value_cents(amount: float) -> float:
    """A value as shown: ceiled to cents (1.801 -> 1.81), so it never reads lower than it is."""
    return math.ceil((amount - _SHOWN_EPS) * 100) / 100 + 0.0


def normalise_lots(lots: float, spec: SymbolSpec) -> float:
    """``lots`` snapped to the nearest multiple of ``spec.lot_step`` (rounded to 8 decimals)
    when within 1e-6 of it, measured in steps (0.0100000001 -> 0.01); otherwise unchanged,
    and the ``lot_step`` check refuses it."""
    if not math.isfinite(lots):
        return lots
    steps = lots / spec.lot_step
    nearest = round(steps)
    if abs(steps - nearest) > EPS:
        return lots
    return round(nearest * spec.lot_step, 8) + 0.0


def stop_level(level: float | None) -> float | None:
    return None if level is None or level == 0 else level


def mid(quote: Quote) -> float:
    return (quote.bid + quote.ask) / 2


def entry_price(action: Action, quote: Quote) -> float:
    """MT4 fills a buy at the ask and a sell at the bid."""
    return quote.ask if action == "buy" else quote.bid


def exit_price(action: Action, quote: Quote) -> float:
    """A buy closes at the bid, a sell at the ask."""
    return quote.bid if action == "buy" else quote.ask


def loss_in_quote(
    action: Action, lots: float, spec: SymbolSpec, from_price: float, to_price: float
) -> float:
    """Loss (negative: profit) in the quote currency when price moves from -> to."""
    move = from_price - to_price if action == "buy" else to_price - from_price
    return lots * spec.contract_size * move


def to_account(
    amount: float,
    symbol: str,
    spec: SymbolSpec,
    currency: str,
    prices: Mapping[str, Quote],
    own_rate: float | None = None,
) -> float | None:
    """``amount`` in ``symbol``'s quote currency as account ``currency``; None if no price.

    ``own_rate`` stands in for ``symbol``'s own price when it has no current quote.
    """
    quote_ccy = spec.quote_currency
    if quote_ccy == currency:
        return amount
    base = spec.base_currency or symbol[:3]
    if base == currency:
        own = prices.get(symbol)
        rate = mid(own) if own is not None else own_rate
        return amount / rate if rate else None
    direct = prices.get(currency + quote_ccy)
    if direct is not None and mid(direct) > 0:
        return amount / mid(direct)
    inverse = prices.get(quote_ccy + currency)
    if inverse is not None:
        return amount * mid(inverse)
    return None


def risk_to_stop(
    symbol: str,
    action: Action,
    lots: float,
    spec: SymbolSpec,
    from_price: float,
    sl: float,
    currency: str,
    prices: Mapping[str, Quote],
    own_rate: float | None = None,
) -> float | None:
    """Money lost (account currency) if price moves from ``from_price`` to ``sl``, never
    below 0 (an SL beyond ``from_price`` in profit risks nothing); None without a rate."""
    loss = max(0.0, loss_in_quote(action, lots, spec, from_price, sl))
    return to_account(loss, symbol, spec, currency, prices, own_rate)


def position_risk(
    position: Position,
    prices: Mapping[str, Quote],
    specs: Mapping[str, SymbolSpec],
    currency: str,
) -> float | None:
    """Money lost from the current exit price to the SL (0 once the SL locks profit).

    None when it cannot be known: no SL, no contract spec, no conversion price.
    Without a current quote the open price stands in for the exit price.
    """
    spec = specs.get(position.symbol)
    sl = stop_level(position.sl)
    if spec is None or sl is None:
        return None
    quote = prices.get(position.symbol)
    start = exit_price(position.action, quote) if quote is not None else position.open_price
    # risk_to_stop, inlined: this runs for every position of every agent on every check.
    loss = max(0.0, loss_in_quote(position.action, position.lots, spec, start, sl))
    return to_account(loss, position.symbol, spec, currency, prices, position.open_price)


def pending_risk(
    order: PendingOrder,
    prices: Mapping[str, Quote],
    specs: Mapping[str, SymbolSpec],
    currency: str,
) -> float | None:
    """Money lost from a pending order's ``entry`` to its SL; None as for a position."""
    spec = specs.get(order.symbol)
    sl = stop_level(order.sl)
    if spec is None or sl is None:
        return None
    return risk_to_stop(
        order.symbol, order.action, order.lots, spec, order.entry, sl, currency, prices, order.entry
    )


def open_risk(
    positions: Iterable[Position],
    prices: Mapping[str, Quote],
    specs: Mapping[str, SymbolSpec],
    *,
    no_sl_risk: float = 0.0,
    currency: str = "USD",
) -> float:
    """Sum of money at risk from current prices to each SL (account currency).

    A position whose risk cannot be known (no SL, no contract spec, no conversion
    price) counts ``no_sl_risk``; the engine passes the agent's per-trade budget.
    """
    total = 0.0
    for position in positions:
        risk = position_risk(position, prices, specs, currency)
        total += no_sl_risk if risk is None else risk
    return total


def book_risk(
    book: AgentBook,
    prices: Mapping[str, Quote],
    specs: Mapping[str, SymbolSpec],
    positions: Iterable[Position] | None = None,
) -> tuple[float, float]:
    """``(open, pending)``: the open risk of ``book``'s positions (or of ``positions`` in
    their place) and the risk of its pending orders, each unknown one (no SL, no spec, no
    rate) at the agent's per-trade budget. Priced on the agent's own bridge's quotes
    (``book.quotes``; brokers' quotes differ, and a gap on one bridge is not on another),
    then ``prices`` for symbols it has none of."""
    budget, currency = book.per_trade_budget, book.config.currency
    if book.quotes:
        prices = {**prices, **book.quotes}
    held = open_risk(
        book.positions if positions is None else positions,
        prices,
        specs,
        no_sl_risk=budget,
        currency=currency,
    )
    flying = 0.0
    for order in book.pending:
        risk = pending_risk(order, prices, specs, currency)
        flying += budget if risk is None else risk
    return held, flying
