"""The simulated broker account behind the simulated EA Bridge: pure model, no I/O.

:class:`SimMarket` holds a seeded random walk of quotes and one account trading
against it. Time only moves when :meth:`SimMarket.step` is given a later epoch-ms
clock, so tests drive it deterministically and the server drives it with the wall
clock. Every call speaks the structs of :mod:`hub.bridge.models`.

SimError           a request the bridge refuses (``status`` is the HTTP status)
├── OrderRefused   400: bad lots, bad stops, not enough margin, unknown symbol
└── NotFound       404: unknown ticket, or a tick for an unknown symbol
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from channels.clock import now_ms
from hub.bridge.models import Account, Action, ClosedTrade, Position, Tick
from hub.config import SymbolSpec

__all__ = ["FIRST_TICKET", "NotFound", "OrderRefused", "SimError", "SimMarket"]

FIRST_TICKET = 1001
STOP_OUT_LEVEL = 0.5  # equity / margin below this closes the worst position (reason stop_out)

# symbol: (start mid, spread, volatility in price units per sqrt(second))
_KNOWN: dict[str, tuple[float, float, float]] = {
    "XAUUSD": (2650.00, 0.30, 0.25),
    "EURUSD": (1.0800, 0.00010, 0.00005),
    "GBPUSD": (1.2700, 0.00012, 0.00006),
    "USDJPY": (150.000, 0.015, 0.006),
}
_DEFAULT_START = 100.0
# symbol: (driver symbol, correlation of their returns)
_CORRELATED: dict[str, tuple[str, float]] = {"GBPUSD": ("EURUSD", 0.8)}
_LOT_EPS = 1e-9


class SimError(Exception):
    """A request the simulated bridge refuses; the message is shown to the caller."""

    status = 400


class OrderRefused(SimError):
    status = 400


class NotFound(SimError):
    status = 404


@dataclass
class _Quote:
    spec: SymbolSpec
    mid: float
    spread: float
    sigma: float  # relative volatility per sqrt(second)
    bid: float = 0.0
    ask: float = 0.0
    changed_ms: int = 0
    pinned: bool = False

    def requote(self, now_ms: int) -> None:
        digits = self.spec.digits
        point = 10.0**-digits
        bid = round(self.mid - self.spread / 2, digits)
        ask = round(bid + self.spread, digits)
        if ask <= bid:
            ask = round(bid + point, digits)
        self.set(bid, ask, now_ms)

    def set(self, bid: float, ask: float, now_ms: int) -> None:
        if (bid, ask) != (self.bid, self.ask):
            self.bid, self.ask, self.changed_ms = bid, ask, now_ms


@dataclass
class _Open:
    ticket: int
    symbol: str
    action: Action
    lots: float
    open_price: float
    sl: float | None
    tp: float | None
    open_time: int
    comment: str


class SimMarket:
    """Quotes for ``symbols`` and one account of ``balance`` in ``currency``."""

    def __init__(
        self,
        symbols: dict[str, SymbolSpec],
        balance: float,
        leverage: int = 100,
        currency: str = "USD",
        seed: int | None = None,
        *,
        start_ms: int | None = None,
    ) -> None:
        if not symbols:
            raise ValueError("symbols: at least one symbol is required")
        if not balance > 0:
            raise ValueError(f"balance: must be > 0, got {balance}")
        if leverage < 1:
            raise ValueError(f"leverage: must be >= 1, got {leverage}")
        self.symbols = dict(symbols)
        self.initial_balance = float(balance)
        self.leverage = leverage
        self.currency = currency
        self.seed = seed
        self.orders_filled = 0
        self._next_ticket = FIRST_TICKET
        self._start(start_ms)

    def _start(self, start_ms: int | None) -> None:
        self.now_ms = start_ms if start_ms is not None else now_ms()
        self.balance = self.initial_balance
        self._rng = random.Random(self.seed)
        self._quotes: dict[str, _Quote] = {}
        for name, spec in self.symbols.items():
            point = 10.0**-spec.digits
            start, spread, vol = _KNOWN.get(name, (_DEFAULT_START, 2 * point, 5 * point))
            quote = _Quote(spec=spec, mid=start, spread=spread, sigma=min(vol / start, 0.002))
            quote.requote(self.now_ms)
            self._quotes[name] = quote
        for name, spec in self.symbols.items():
            try:
                self._to_account(1.0, spec.quote_currency)
            except OrderRefused:
                raise ValueError(
                    f"symbols.{name}: its {spec.quote_currency} profits cannot be valued in "
                    f"{self.currency}; add {self.currency}{spec.quote_currency} or "
                    f"{spec.quote_currency}{self.currency} to the symbols"
                ) from None
        self._open: dict[int, _Open] = {}
        self._history: list[ClosedTrade] = []

    def reset(self, start_ms: int | None = None) -> None:
        """Initial balance, no positions or history, a fresh walk from the start prices.

        Tickets keep increasing across resets, so a ticket never names two trades.
        """
        self.orders_filled = 0
        self._start(start_ms)

    # -- time and prices ------------------------------------------------------

    def step(self, now_ms: int) -> None:
        """Advance the walk to ``now_ms`` (by the time elapsed) and trigger SL/TP/stop-out."""
        if now_ms > self.now_ms:
            dt = (now_ms - self.now_ms) / 1000.0
            draws = {name: self._rng.gauss(0.0, 1.0) for name in self._quotes}
            for name, quote in self._quotes.items():
                z = draws[name]
                driver = _CORRELATED.get(name)
                if driver is not None and driver[0] in draws:
                    rho = driver[1]
                    z = rho * draws[driver[0]] + math.sqrt(1 - rho * rho) * z
                if not quote.pinned:
                    quote.mid *= math.exp(quote.sigma * math.sqrt(dt) * z - quote.sigma**2 * dt / 2)
                    quote.requote(now_ms)
            self.now_ms = now_ms
        self._check_stops()

    def pin(self, symbol: str, bid: float, ask: float) -> Tick:
        """Hold ``symbol`` at ``bid``/``ask`` until :meth:`unpin`; SL/TP see the pinned price."""
        quote = self._quote(symbol, OrderRefused)
        digits = quote.spec.digits
        if not (math.isfinite(bid) and bid > 0):
            raise OrderRefused(f"bid: must be a price > 0, got {bid}")
        if not math.isfinite(ask):
            raise OrderRefused(f"ask: must be a finite price, got {ask}")
        bid, ask = round(bid, digits), round(ask, digits)
        if not ask > bid:
            raise OrderRefused(f"ask: must be above bid at {digits} digits, got {bid}/{ask}")
        quote.pinned = True
        quote.mid = (bid + ask) / 2
        quote.set(bid, ask, self.now_ms)
        self._check_stops()
        return self.tick(symbol)

    def unpin(self, symbol: str) -> Tick:
        """Let ``symbol`` walk again, from where it was pinned."""
        quote = self._quote(symbol, OrderRefused)
        quote.pinned = False
        return self.tick(symbol)

    def tick(self, symbol: str) -> Tick:
        quote = self._quote(symbol, NotFound)
        return Tick(symbol=symbol, bid=quote.bid, ask=quote.ask, time=quote.changed_ms)

    def _quote(self, symbol: str, error: type[SimError]) -> _Quote:
        quote = self._quotes.get(symbol)
        if quote is None:
            known = ", ".join(self._quotes)
            raise error(f"symbol: unknown symbol {symbol!r} (known: {known})")
        return quote

    # -- money ----------------------------------------------------------------

    def _to_account(self, amount: float, currency: str) -> float:
        """``amount`` of ``currency`` in the account currency, at current mid prices."""
        if currency == self.currency:
            return amount
        direct = self._quotes.get(self.currency + currency)  # USDJPY: divide JPY by it
        if direct is not None:
            return amount / ((direct.bid + direct.ask) / 2)
        inverse = self._quotes.get(currency + self.currency)  # EURUSD: multiply EUR by it
        if inverse is not None:
            return amount * ((inverse.bid + inverse.ask) / 2)
        raise OrderRefused(f"cannot convert {currency} to {self.currency}: no price for it")

    def _base(self, symbol: str) -> str:
        spec = self.symbols[symbol]
        return spec.base_currency or symbol[:3]

    def margin_for(self, symbol: str, lots: float, price: float) -> float:
        """Margin in account currency for ``lots`` of ``symbol`` at ``price``."""
        spec = self.symbols[symbol]
        units = lots * spec.contract_size
        if self._base(symbol) == self.currency:
            return units / self.leverage
        return self._to_account(units * price, spec.quote_currency) / self.leverage

    def _profit(self, pos: _Open, lots: float | None = None) -> float:
        quote = self._quotes[pos.symbol]
        move = quote.bid - pos.open_price if pos.action == "buy" else pos.open_price - quote.ask
        amount = move * (pos.lots if lots is None else lots) * quote.spec.contract_size
        return self._to_account(amount, quote.spec.quote_currency)

    def account(self) -> Account:
        profit = sum(self._profit(p) for p in self._open.values())
        margin = sum(self.margin_for(p.symbol, p.lots, p.open_price) for p in self._open.values())
        equity = self.balance + profit
        return Account(
            balance=round(self.balance, 2),
            equity=round(equity, 2),
            margin=round(margin, 2),
            free_margin=round(equity - margin, 2),
            profit=round(profit, 2),
            currency=self.currency,
            leverage=self.leverage,
        )

    # -- orders ---------------------------------------------------------------

    def positions(self) -> list[Position]:
        return [self._position(p) for p in self._open.values()]

    def _position(self, pos: _Open) -> Position:
        return Position(
            ticket=pos.ticket,
            symbol=pos.symbol,
            action=pos.action,
            lots=pos.lots,
            open_price=pos.open_price,
            sl=pos.sl,
            tp=pos.tp,
            profit=round(self._profit(pos), 2),
            open_time=pos.open_time,
            comment=pos.comment,
        )

    def trade(
        self,
        symbol: str,
        action: Action,
        lots: float,
        sl: float | None = None,
        tp: float | None = None,
        comment: str = "",
    ) -> Position:
        """Fill a market order at ask (buy) or bid (sell), or raise :class:`OrderRefused`."""
        quote = self._quote(symbol, OrderRefused)
        if action not in ("buy", "sell"):
            raise OrderRefused(f"action: must be buy or sell, got {action!r}")
        self._check_lots(quote.spec, lots)
        sl, tp = _stop(sl, "sl"), _stop(tp, "tp")
        self._check_stops_side(action, quote, sl, tp)
        price = quote.ask if action == "buy" else quote.bid
        need = self.margin_for(symbol, lots, price)
        free = self.account().free_margin
        if need > free:
            raise OrderRefused(
                f"lots: not enough free margin for {lots} {symbol}: "
                f"needs {need:.2f} {self.currency}, free {free:.2f}"
            )
        pos = _Open(
            ticket=self._next_ticket,
            symbol=symbol,
            action=action,
            lots=lots,
            open_price=price,
            sl=sl,
            tp=tp,
            open_time=self.now_ms,
            comment=comment,
        )
        self._next_ticket += 1
        self._open[pos.ticket] = pos
        self.orders_filled += 1
        return self._position(pos)

    def close(self, ticket: int, lots: float | None = None) -> ClosedTrade:
        """Close ``lots`` (default all) of ``ticket`` at bid (buy) / ask (sell)."""
        pos = self._get(ticket)
        if lots is None or abs(lots - pos.lots) < _LOT_EPS:
            return self._close(pos, pos.lots, "close")
        spec = self.symbols[pos.symbol]
        self._check_lots(spec, lots)
        if lots > pos.lots:
            raise OrderRefused(f"lots: {lots} is more than the position's {pos.lots}")
        rest = round(pos.lots - lots, 8)
        if rest < spec.min_lots - _LOT_EPS:
            raise OrderRefused(
                f"lots: closing {lots} of {pos.lots} would leave {rest}, below min_lots "
                f"{spec.min_lots}; close all of it instead"
            )
        return self._close(pos, lots, "close")

    def modify(self, ticket: int, sl: float | None = None, tp: float | None = None) -> Position:
        """Set new stops; ``None`` keeps a stop as it is, ``0`` removes it."""
        pos = self._get(ticket)
        new_sl = pos.sl if sl is None else _stop(sl, "sl")
        new_tp = pos.tp if tp is None else _stop(tp, "tp")
        self._check_stops_side(pos.action, self._quotes[pos.symbol], new_sl, new_tp)
        pos.sl, pos.tp = new_sl, new_tp
        return self._position(pos)

    def history(self, since: int | None = None) -> list[ClosedTrade]:
        """Closed trades, oldest first; with ``since``, those closed at or after it (ms)."""
        if since is None:
            return list(self._history)
        return [t for t in self._history if t.close_time >= since]

    def _get(self, ticket: int) -> _Open:
        pos = self._open.get(ticket)
        if pos is None:
            raise NotFound(f"ticket: no open position {ticket}")
        return pos

    def _close(self, pos: _Open, lots: float, reason: str) -> ClosedTrade:
        quote = self._quotes[pos.symbol]
        profit = round(self._profit(pos, lots), 2)
        self.balance += profit
        closed = ClosedTrade(
            ticket=pos.ticket,
            symbol=pos.symbol,
            action=pos.action,
            lots=lots,
            open_price=pos.open_price,
            close_price=quote.bid if pos.action == "buy" else quote.ask,
            sl=pos.sl,
            tp=pos.tp,
            profit=profit,
            open_time=pos.open_time,
            close_time=self.now_ms,
            comment=pos.comment,
            reason=reason,
        )
        self._history.append(closed)
        rest = round(pos.lots - lots, 8)
        if rest > _LOT_EPS:
            pos.lots = rest
        else:
            del self._open[pos.ticket]
        return closed

    def _check_stops(self) -> None:
        for pos in list(self._open.values()):
            quote = self._quotes[pos.symbol]
            if pos.action == "buy":
                hit_sl = pos.sl is not None and quote.bid <= pos.sl
                hit_tp = pos.tp is not None and quote.bid >= pos.tp
            else:
                hit_sl = pos.sl is not None and quote.ask >= pos.sl
                hit_tp = pos.tp is not None and quote.ask <= pos.tp
            if hit_sl or hit_tp:
                self._close(pos, pos.lots, "sl" if hit_sl else "tp")
        while self._open:
            acct = self.account()
            if acct.margin <= 0 or acct.equity / acct.margin >= STOP_OUT_LEVEL:
                break
            worst = min(self._open.values(), key=self._profit)
            self._close(worst, worst.lots, "stop_out")

    @staticmethod
    def _check_lots(spec: SymbolSpec, lots: float) -> None:
        if not (math.isfinite(lots) and lots > 0):
            raise OrderRefused(f"lots: must be > 0, got {lots}")
        steps = lots / spec.lot_step
        if abs(steps - round(steps)) > 1e-6:
            raise OrderRefused(f"lots: {lots} is not a multiple of the lot step {spec.lot_step}")
        if lots < spec.min_lots - _LOT_EPS or lots > spec.max_lots + _LOT_EPS:
            raise OrderRefused(
                f"lots: {lots} is outside {spec.min_lots}..{spec.max_lots} for this symbol"
            )

    @staticmethod
    def _check_stops_side(
        action: Action, quote: _Quote, sl: float | None, tp: float | None
    ) -> None:
        if action == "buy":
            if sl is not None and not sl < quote.bid:
                raise OrderRefused(f"sl: a buy's stop loss must be below bid {quote.bid}, got {sl}")
            if tp is not None and not tp > quote.bid:
                raise OrderRefused(
                    f"tp: a buy's take profit must be above bid {quote.bid}, got {tp}"
                )
        else:
            if sl is not None and not sl > quote.ask:
                raise OrderRefused(
                    f"sl: a sell's stop loss must be above ask {quote.ask}, got {sl}"
                )
            if tp is not None and not tp < quote.ask:
                raise OrderRefused(
                    f"tp: a sell's take profit must be below ask {quote.ask}, got {tp}"
                )


def _stop(value: float | None, name: str) -> float | None:
    """A stop price as given, ``None`` for none; ``0`` also means none (the MT4 convention)."""
    if value is None or value == 0:
        return None
    if not (math.isfinite(value) and value > 0):
        raise OrderRefused(f"{name}: must be a price > 0 (or 0 for none), got {value}")
    return value
