"""The attack's operations: what clients ask, drawn by hypothesis, priced like a client.

Each operation names the hub instance it lands on (``"A"`` or ``"B"``; with one hub, both
are the same hub) and is resolved into a request against the bridges as a client sees
them — the bridge's quote now, or the last one a hub read (``quote="seen"``, a client of
the ticks channel) — when its step starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from hypothesis import strategies as st

from hub.trading.models import CloseRequest, ModifyRequest, SignalRequest, TradeRequest
from tests.hub.trading.attack_model import (
    AGENTS,
    CENT,
    SPECS,
    SYMBOLS,
    BridgeModel,
    exit_price,
    per_trade_limit,
    usd,
)
from tests.hub.trading.kit import OrderFault

__all__ = [
    "Close",
    "CloseAll",
    "Garble",
    "Modify",
    "Op",
    "Outage",
    "Poll",
    "Requests",
    "Signal",
    "Trade",
]

FAULTS: tuple[OrderFault | None, ...] = (None, None, None)
FAULTS += ("lost", "hang", "dropped", "unsent", "vanished", "slow")


@dataclass(frozen=True)
class Trade:
    on: str
    agent: str
    symbol: str
    action: str
    lots: str  # min | two | five | off_step | below_min
    sl: str  # budget | cent_over | headroom | half | double | point | wrong_side | none
    tp: str | None = None  # None | far | wrong_side
    quote: str = "now"  # now: priced from the bridge's quote | seen: from the last one read
    coid: str = "new"  # new | none | again (the last request, same id) | changed (same id)
    fault: OrderFault | None = None
    pre: int = 0  # event-loop turns before it starts (interleaving within a race)


@dataclass(frozen=True)
class Signal:
    on: str
    symbol: str
    direction: str
    sl_spreads: int  # SL distance from agent_3's quote, in spreads
    again: bool = False  # repeat the last signal (same signal_id)
    pre: int = 0


@dataclass(frozen=True)
class Modify:
    on: str
    pick: int  # index into every position the bridges hold
    sl: str  # keep | tighten | widen | widen_budget | widen_cent_over | remove | wrong_side
    tp: str = "keep"  # keep | set | remove
    fault: OrderFault | None = None
    pre: int = 0


@dataclass(frozen=True)
class Close:
    on: str
    pick: int
    size: str  # all | part (min lots) | over (more than held) | gone (a closed ticket)
    fault: OrderFault | None = None
    pre: int = 0


@dataclass(frozen=True)
class CloseAll:
    on: str
    agent: str
    fault: OrderFault | None = None
    pre: int = 0


@dataclass(frozen=True)
class Poll:
    on: str
    agent: str
    slow: str = "none"  # none | tick | positions | account | history: that read is slow
    pre: int = 0


@dataclass(frozen=True)
class Garble:
    """From ``pre`` turns on, a bridge answers some ``/positions`` rows unreadable (every
    hub's client skips and counts them): the row of one of the positions the bridges hold
    (``pick``), with ``others`` the rows of every position its agent holds, with
    ``new_too`` those of every order its bridge fills after (no position held: the bridge
    of agent ``pick``, new orders only). ``mend``: every row of every bridge readable again."""

    pick: int
    others: bool = False
    new_too: bool = False
    mend: bool = False
    pre: int = 0


@dataclass(frozen=True)
class Outage:
    """From ``pre`` turns on, the bridge of ``agent`` refuses every connection: each read
    fails and each order is refused unsent, in every hub, until it is mended. A hub that
    restarts meanwhile starts without reading it. ``mend``: every bridge answers again."""

    agent: str
    mend: bool = False
    pre: int = 0


Op = Trade | Signal | Modify | Close | CloseAll | Poll | Garble | Outage

# -- strategies -----------------------------------------------------------------------------

SL_KINDS = ("budget", "budget", "half", "half", "headroom", "point")  # valid, weighted
SL_KINDS += ("cent_over", "double", "wrong_side", "none")  # refused by the hub (or a breach)

instances = st.sampled_from(("A", "B"))
_pres = st.integers(0, 4)
_faults = st.sampled_from(FAULTS)


def _trade_for(agent: str) -> st.SearchStrategy[Trade]:
    return st.builds(
        Trade,
        on=instances,
        agent=st.just(agent),
        symbol=st.sampled_from(SYMBOLS[agent]),
        action=st.sampled_from(("buy", "sell")),
        lots=st.sampled_from(("min", "min", "min", "two", "five", "off_step", "below_min")),
        sl=st.sampled_from(SL_KINDS),
        tp=st.sampled_from((None, None, "far", "wrong_side")),
        quote=st.sampled_from(("now", "seen")),
        coid=st.sampled_from(("new", "new", "new", "none", "again", "changed")),
        fault=_faults,
        pre=_pres,
    )


trades = st.sampled_from(AGENTS).flatmap(_trade_for)
signals = st.builds(
    Signal,
    on=instances,
    symbol=st.sampled_from(("XAUUSD", "EURUSD", "GBPUSD", "USDJPY")),
    direction=st.sampled_from(("long", "short")),
    sl_spreads=st.sampled_from((2, 4, 8, 16, 40)),
    again=st.booleans(),
    pre=_pres,
)
modifies = st.builds(
    Modify,
    on=instances,
    pick=st.integers(0, 7),
    sl=st.sampled_from(
        ("tighten", "widen", "widen_budget", "widen_cent_over", "remove", "wrong_side", "keep")
    ),
    tp=st.sampled_from(("keep", "set", "remove")),
    fault=_faults,
    pre=_pres,
)
closes = st.builds(
    Close,
    on=instances,
    pick=st.integers(0, 7),
    size=st.sampled_from(("all", "part", "over", "gone")),
    fault=_faults,
    pre=_pres,
)
close_alls = st.builds(
    CloseAll, on=instances, agent=st.sampled_from(AGENTS), fault=_faults, pre=_pres
)
polls = st.builds(
    Poll,
    on=instances,
    agent=st.sampled_from(AGENTS),
    slow=st.sampled_from(("none", "tick", "positions", "account", "history")),
    pre=_pres,
)
garbles = st.builds(
    Garble,
    pick=st.integers(0, 7),
    others=st.booleans(),
    new_too=st.booleans(),
    mend=st.booleans(),
    pre=_pres,
)
outages = st.builds(Outage, agent=st.sampled_from(AGENTS), mend=st.booleans(), pre=_pres)
ops = st.one_of(
    trades, trades, signals, modifies, closes, close_alls, polls, polls, garbles, garbles, outages
)


def to_digits(price: float, symbol: str, up: bool) -> float:
    """``price`` on the symbol's digits, rounded up or down."""
    digits = SPECS[symbol].digits
    scaled = price * 10**digits
    whole = math.ceil(scaled - 1e-6) if up else math.floor(scaled + 1e-6)
    return round(whole / 10**digits, digits)


# -- resolving an operation into a request --------------------------------------------------


class Requests:
    """Requests as clients build them, from the bridges' quotes and balances."""

    def __init__(self, model: BridgeModel) -> None:
        self.model = model
        self.markets = model.markets
        self.serial = 0
        self.last_trade: dict[str, TradeRequest] = {}
        self.last_signal: SignalRequest | None = None

    def _new_id(self, what: str) -> str:
        self.serial += 1
        return f"{what}{self.serial}"

    def trade(self, op: Trade) -> TradeRequest:
        agent, symbol = op.agent, op.symbol
        if op.coid in ("again", "changed") and agent in self.last_trade:
            last = self.last_trade[agent]
            if op.coid == "again":
                return last
            step = SPECS[last.symbol].lot_step
            return msgspec.structs.replace(last, lots=round(last.lots + step, 8))
        market, spec = self.markets[agent], SPECS[symbol]
        q = market.tick(symbol)
        if op.quote == "seen":
            q = self.model.last_read.get((agent, symbol), q)  # the last one a hub read
        buy = op.action == "buy"
        entry, exit_ = (q.ask, q.bid) if buy else (q.bid, q.ask)
        sign = 1.0 if buy else -1.0
        point = 10.0**-spec.digits
        lots = round(
            {
                "min": spec.min_lots,
                "two": spec.min_lots + spec.lot_step,
                "five": spec.min_lots + 4 * spec.lot_step,
                "off_step": spec.min_lots + spec.lot_step / 2,
                "below_min": spec.min_lots / 2,
            }[op.lots],
            8,
        )
        per_price = usd(market, symbol, lots * spec.contract_size)  # USD per 1.0 of price

        def at_risk(money: float, more: bool) -> float:
            """The SL that risks ``money`` from the entry, on the digits towards less risk
            (or more)."""
            raw = entry - sign * max(money, 0.0) / per_price
            return to_digits(raw, symbol, up=buy != more)

        limit = per_trade_limit(agent, market)
        sl: float | None = {
            "budget": lambda: at_risk(limit, False),
            "cent_over": lambda: at_risk(limit + CENT, True),
            "headroom": lambda: at_risk(self.model.room(agent), False),
            "half": lambda: at_risk(limit / 2, False),
            "double": lambda: at_risk(limit * 2, False),
            "point": lambda: round(exit_ - sign * point, spec.digits),
            "wrong_side": lambda: round(exit_ + sign * 10 * point, spec.digits),
            "none": lambda: None,
        }[op.sl]()
        spread = q.ask - q.bid
        tp = None
        if op.tp == "far":
            tp = round(entry + sign * 40 * spread, spec.digits)
        elif op.tp == "wrong_side":
            tp = round(entry - sign * 2 * spread, spec.digits)
        coid = None if op.coid == "none" else self._new_id(f"{agent[-1]}c")
        req = TradeRequest(
            symbol=symbol,
            action="buy" if buy else "sell",
            lots=lots,
            sl=sl,
            tp=tp,
            client_order_id=coid,
        )
        if coid is not None:
            self.last_trade[agent] = req
        return req

    def signal(self, op: Signal) -> SignalRequest:
        if op.again and self.last_signal is not None:
            return self.last_signal
        q = self.markets["agent_3"].tick(op.symbol)
        distance = op.sl_spreads * (q.ask - q.bid)
        long = op.direction == "long"
        sl = q.bid - distance if long else q.ask + distance
        self.last_signal = SignalRequest(
            signal_id=self._new_id("sig"),
            symbol=op.symbol,
            direction="long" if long else "short",
            confidence=0.9,
            sl=to_digits(sl, op.symbol, up=not long),
        )
        return self.last_signal

    def modify(self, op: Modify) -> tuple[str, ModifyRequest] | None:
        held = self.model.positions()
        if not held:
            return None
        agent, pos = held[op.pick % len(held)]
        market, spec = self.markets[agent], SPECS[pos.symbol]
        buy = pos.action == "buy"
        sign = 1.0 if buy else -1.0
        exit_ = exit_price(market, pos.symbol, pos.action)
        point = 10.0**-spec.digits
        old = pos.sl if pos.sl is not None else exit_ - sign * 50 * point
        distance = abs(exit_ - old)
        per_price = usd(market, pos.symbol, pos.lots * spec.contract_size)
        limit = per_trade_limit(agent, market)
        sl: float | None = {
            "keep": lambda: None,
            "tighten": lambda: to_digits(exit_ - sign * distance / 2, pos.symbol, up=buy),
            "widen": lambda: to_digits(old - sign * max(distance, 10 * point), pos.symbol, up=buy),
            "widen_budget": lambda: to_digits(
                pos.open_price - sign * limit / per_price, pos.symbol, up=buy
            ),
            "widen_cent_over": lambda: to_digits(
                pos.open_price - sign * (limit + CENT) / per_price, pos.symbol, up=not buy
            ),
            "remove": lambda: 0.0,
            "wrong_side": lambda: round(exit_ + sign * 10 * point, spec.digits),
        }[op.sl]()
        if sl is not None and sl < 0:
            sl = point
        tp = {"keep": None, "set": round(exit_ + sign * 400 * point, spec.digits), "remove": 0.0}[
            op.tp
        ]
        return agent, ModifyRequest(ticket=pos.ticket, sl=sl, tp=tp)

    def garble(self, op: Garble) -> tuple[str, Callable[[int], bool]]:
        """The agent whose bridge ``op`` garbles, and which of its tickets' rows."""
        held = self.model.positions()
        if not held:
            agent, tickets = AGENTS[op.pick % len(AGENTS)], set()
        else:
            agent, pos = held[op.pick % len(held)]
            tickets = {p.ticket for a, p in held if a == agent} if op.others else {pos.ticket}
        market = self.markets[agent]
        known = {*(p.ticket for p in market.positions()), *(t.ticket for t in market.history())}
        new_too = op.new_too
        return agent, lambda t: t in tickets or (new_too and t not in known)

    def close(self, op: Close) -> tuple[str, CloseRequest] | None:
        if op.size == "gone":
            gone = [
                (a, t.ticket)
                for a in AGENTS
                for t in self.markets[a].history()
                if all(p.ticket != t.ticket for p in self.markets[a].positions())
            ]
            if not gone:
                return None
            agent, ticket = gone[op.pick % len(gone)]
            return agent, CloseRequest(ticket=ticket)
        held = self.model.positions()
        if not held:
            return None
        agent, pos = held[op.pick % len(held)]
        spec = SPECS[pos.symbol]
        lots = {"all": None, "part": spec.min_lots, "over": round(pos.lots + spec.lot_step, 8)}[
            op.size
        ]
        return agent, CloseRequest(ticket=pos.ticket, lots=lots)
