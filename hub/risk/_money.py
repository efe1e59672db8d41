"""Money math shared by the checks and the summaries: prices, conversion, risk to a stop.

Stops follow MT4: ``None`` or ``0`` means "no stop". Risk is converted from the
symbol's quote currency to the account currency with current mid prices: a quote
equal to the account currency is taken as is; for a pair whose base is the account
currency (USDJPY for a USD account) the amount is divided by that pair's price;
otherwise a ``{account}{quote}`` pair divides and a ``{quote}{account}`` pair multiplies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hub.bridge.models import Action, Position
from hub.config import SymbolSpec
from hub.risk.context import Quote

EPS = 1e-6
"""Tolerance for money and lot comparisons: exactly at a limit passes, a cent over fails."""


def exceeds(value: float, limit: float) -> bool:
    return value > limit + EPS


def cents(amount: float) -> float:
    return round(amount, 2) + 0.0  # + 0.0 turns -0.0 into 0.0


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
    loss = max(0.0, loss_in_quote(position.action, position.lots, spec, start, sl))
    return to_account(loss, position.symbol, spec, currency, prices, position.open_price)


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
