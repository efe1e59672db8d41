"""The attack's model: what the bridges did, and the limits they must hold.

Everything here is computed from the bridges' own state — the ``SimMarket`` s and what
each bridge was sent, recorded inside it at the instant it arrived — never from a hub's
view. :class:`BridgeModel` is fed by the bridges' hooks (account and quote reads, orders)
and the order events every hub instance publishes; ``check()`` asserts the invariants of
``tests/hub/trading/test_attack.py`` (its docstring states the rules).
"""

from __future__ import annotations

import calendar
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from hub.bridge.models import Account, Position, Tick
from hub.bridge.sim import SimError, SimMarket
from hub.config import AgentRisk, SymbolSpec, parse_config
from hub.trading.models import OrderEvent

__all__ = ["AGENTS", "CONFIG", "HUB_START_MS", "SPECS", "SYMBOLS", "BridgeModel"]

# Quote age is wall-clock time while this model's price moves are instantaneous: quotes the
# hub read in a run count as fresh, and a move no hub has read yet is a quote the hub could
# not know about - what the check after the fill is for. (Set when the config has the key.)
_QUOTE_AGE = (
    "max_quote_age_ms: 600000, " if "max_quote_age_ms" in AgentRisk.__struct_fields__ else ""
)

CONFIG = parse_config(
    """
    polling: {tick_interval: 0.05, account_interval: 0.000001, history_interval: 0.000001,
              timeout: 0.5, trade_timeout: 0.3, backoff_initial: 0.05, backoff_max: 0.2}
    global_risk: {max_total_exposure: 2%, correlation_limit: 0.5}
    symbols:
      XAUUSD: {contract_size: 100, digits: 2}
      EURUSD: {contract_size: 100000, digits: 5}
      GBPUSD: {contract_size: 100000, digits: 5}
      USDJPY: {contract_size: 100000, digits: 3, quote_currency: JPY}
    agents:
      agent_1:
        {name: Atlas, strategy: amd, bridge: "sim://127.0.0.1:18181", symbols: [XAUUSD],
         initial_balance: 200,
         risk: {QUOTE_AGE max_risk_per_trade: 1%, max_daily_loss: 3%, max_positions: 1}}
      agent_2:
        {name: Orion, strategy: ict, bridge: "sim://127.0.0.1:18182", symbols: [EURUSD, GBPUSD],
         initial_balance: 500,
         risk: {QUOTE_AGE max_risk_per_trade: 1.5%, max_daily_loss: 3%, max_positions: 2}}
      agent_3:
        {name: Nova, strategy: mixed, bridge: "sim://127.0.0.1:18183",
         symbols: [XAUUSD, EURUSD, GBPUSD, USDJPY], initial_balance: 1000,
         risk: {QUOTE_AGE max_risk_per_trade: 2%, max_daily_loss: 3%, max_positions: 3}}
    """.replace("QUOTE_AGE ", _QUOTE_AGE),
    "attack-config",
)
"""The shipped agents, with daily limits (3 %) and a total exposure (2 %, below the sum of
the daily limits) low enough that a few trades at their per-trade budgets reach them."""

AGENTS = tuple(CONFIG.agents)
SYMBOLS = {a: tuple(cfg.symbols) for a, cfg in CONFIG.agents.items()}
SPECS: dict[str, SymbolSpec] = dict(CONFIG.symbols)
MAX_EXPOSURE = CONFIG.global_risk.max_total_exposure
TOLERANCE = 0.10  # risk.slippage_tolerance (the SPEC's default)
CENT = 0.01
EPS = 1e-9
HUB_START_MS = calendar.timegm((2030, 3, 4, 8, 0, 0)) * 1000

# -- money, from one bridge's own quotes ---------------------------------------------------


def usd(market: SimMarket, symbol: str, amount: float) -> float:
    """``amount`` of ``symbol``'s quote currency in USD at this bridge's mid."""
    spec = SPECS[symbol]
    if spec.quote_currency == "USD":
        return amount
    if (spec.base_currency or symbol[:3]) == "USD":
        q = market.tick(symbol)
        return amount / ((q.bid + q.ask) / 2)
    for pair, divide in ((f"USD{spec.quote_currency}", True), (f"{spec.quote_currency}USD", False)):
        if pair in market.symbols:
            q = market.tick(pair)
            mid = (q.bid + q.ask) / 2
            return amount / mid if divide else amount * mid
    raise AssertionError(f"no USD rate for {symbol} on this bridge")


def loss_to(action: str, lots: float, symbol: str, frm: float, to: float) -> float:
    """Loss in the quote currency when the price goes from ``frm`` to ``to``."""
    move = frm - to if action == "buy" else to - frm
    return lots * SPECS[symbol].contract_size * move


def exit_price(market: SimMarket, symbol: str, action: str) -> float:
    q = market.tick(symbol)
    return q.bid if action == "buy" else q.ask


def open_risk(market: SimMarket, pos: Position, quote: Tick | None = None) -> float:
    """What ``pos`` would still lose from the current exit price (or ``quote``'s) to its SL
    (unbounded without SL)."""
    if pos.sl is None or pos.sl == 0:
        return math.inf
    if quote is None:
        frm = exit_price(market, pos.symbol, pos.action)
    else:
        frm = quote.bid if pos.action == "buy" else quote.ask
    return usd(market, pos.symbol, max(0.0, loss_to(pos.action, pos.lots, pos.symbol, frm, pos.sl)))


def per_trade_limit(agent: str, market: SimMarket) -> float:
    return CONFIG.agents[agent].risk.max_risk_per_trade * max(market.account().balance, 0.0)


def daily_limit(agent: str, start_equity: float) -> float:
    return CONFIG.agents[agent].risk.max_daily_loss * start_equity


def utc_day(ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000))


def widens(before: Position | None, sl: float | None) -> bool:
    """Whether setting ``sl`` (None keeps, 0 removes) lets ``before`` lose more."""
    if before is None or before.sl is None:
        return False
    new = before.sl if sl is None else (None if sl == 0 else sl)
    if new is None:
        return True
    return new < before.sl if before.action == "buy" else new > before.sl


# -- the model ------------------------------------------------------------------------------


@dataclass
class Fill:
    agent: str
    ticket: int
    tag: str  # the first word of the bridge comment: the order tag of (agent, client_order_id)
    lots: float


@dataclass
class Touch:
    """An order that added risk in this step: a fill, or a modify that widened an SL."""

    agent: str
    ticket: int
    ref: float  # the price its per-trade risk is counted from
    limit: float  # the per-trade limit when it reached the bridge
    what: str


class BridgeModel:
    def __init__(self, markets: dict[str, SimMarket], clock: Callable[[], int]) -> None:
        self.markets = markets
        self.clock = clock
        self.day_start: dict[str, tuple[str, float]] = {}  # agent -> (UTC day, its start)
        self.halted: dict[str, str] = {}  # agent -> the UTC day it is halted for
        self.stopped = False  # the emergency stop is in force
        self.fills: dict[tuple[str, int], Fill] = {}
        self.tags: Counter[tuple[str, str]] = Counter()
        self.touched: list[Touch] = []
        self.gate_breaches: list[str] = []
        self.full_closes: dict[tuple[str, int], str] = {}
        self.part_closes: defaultdict[tuple[str, int], float] = defaultdict(float)
        self.events: defaultdict[tuple[str, int], list[tuple[str, OrderEvent]]] = defaultdict(list)
        # (hub, agent, symbol) -> the quotes that hub read from that bridge in this step,
        # after the last one it read before: its checks in the step may have used any of
        # them (each hub its own: another instance's reads reach it later, if at all).
        self.seen: dict[tuple[str, str, str], list[Tick]] = {}
        self.last_read: dict[tuple[str, str], Tick] = {}  # (agent, symbol): by any hub
        self.halts = 0

    def day(self) -> str:
        return utc_day(self.clock())

    def halted_today(self) -> list[str]:
        return [a for a, day in self.halted.items() if day == self.day()]

    def positions(self) -> list[tuple[str, Position]]:
        return [(a, p) for a in AGENTS for p in self.markets[a].positions()]

    def start_equity(self, agent: str) -> float:
        """The day's start: the first account read today; before any, the equity now (an
        order reaching the bridge fixes it: no hub could have read a later one)."""
        start = self.day_start.get(agent)
        if start is None or start[0] != self.day():
            start = self.day_start[agent] = (self.day(), self.markets[agent].account().equity)
        return start[1]

    def held_risk(self, agent: str, pos: Position) -> float:
        """``pos``'s open risk for the daily and exposure invariants: from the bridge's
        current price, or from a quote of that symbol any hub read from that bridge in this
        step or last before it (never another bridge's: brokers' quotes differ), whichever
        risks less. A
        check may price positions at a quote up to ``max_quote_age_ms`` old (SPEC 7), and
        the ``move`` rule's unpolled moves are all within that age; the fill of the order
        itself is held to the fill price by invariant 2a."""
        risk = open_risk(self.markets[agent], pos)
        for (_, bridge, symbol), quotes in self.seen.items():
            if (bridge, symbol) == (agent, pos.symbol):  # its own bridge's, never another's
                for quote in quotes:
                    risk = min(risk, open_risk(self.markets[agent], pos, quote))
        return risk

    def room(self, agent: str) -> float:
        """What the SPEC still lets ``agent`` risk: per trade, daily headroom, exposure."""
        market = self.markets[agent]
        start = self.start_equity(agent)
        daily = daily_limit(agent, start) - max(0.0, start - market.account().equity)
        daily -= sum(open_risk(market, p) for p in market.positions())
        held = sum(open_risk(self.markets[a], p) for a, p in self.positions())
        equity = sum(m.account().equity for m in self.markets.values())
        exposure = MAX_EXPOSURE * max(equity, 0.0) - held
        return min(per_trade_limit(agent, market), daily, exposure)

    # -- the bridges' hooks, called at the instant it happens ------------------------------

    def account_read(self, agent: str, account: Account) -> None:
        day = self.day()
        start = self.day_start.get(agent)
        if start is None or start[0] != day:
            start = self.day_start[agent] = (day, account.equity)
        loss = max(0.0, start[1] - account.equity)
        if loss >= daily_limit(agent, start[1]) - EPS and self.halted.get(agent) != day:
            self.halted[agent] = day
            self.halts += 1

    def tick_read(self, hub: str, agent: str, tick: Tick) -> None:
        self.seen.setdefault((hub, agent, tick.symbol), []).append(tick)
        self.last_read[(agent, tick.symbol)] = tick

    def restarted(self, hub: str) -> None:
        """``hub`` restarts: what it read before is forgotten with it."""
        self.seen = {key: quotes for key, quotes in self.seen.items() if key[0] != hub}

    def order_arrived(
        self, agent: str, op: str, order: Any, outcome: Any, before: list[Position]
    ) -> None:
        market = self.markets[agent]
        held = {p.ticket: p for p in before}
        risky = op == "trade" or (op == "modify" and widens(held.get(order.ticket), order.sl))
        what = f"{op} {msgspec.json.encode(order).decode()}"
        if risky and self.stopped:
            self.gate_breaches.append(
                f"{what} reached {agent}'s bridge while the emergency stop was in force"
            )
        if risky and self.halted.get(agent) == self.day():
            self.gate_breaches.append(
                f"{what} reached {agent}'s bridge while {agent} was halted for {self.day()} "
                f"(start-of-day equity {self.start_equity(agent):.2f}, "
                f"equity {market.account().equity:.2f})"
            )
        if isinstance(outcome, SimError) or not risky:
            return
        self.start_equity(agent)
        limit = per_trade_limit(agent, market)
        pos: Position = outcome
        if op == "trade":
            tag = pos.comment.split(" ", 1)[0]
            self.fills[(agent, pos.ticket)] = Fill(agent, pos.ticket, tag, pos.lots)
            self.tags[(agent, tag)] += 1
            self.touched.append(Touch(agent, pos.ticket, pos.open_price, limit, what))
            return
        now = exit_price(market, pos.symbol, pos.action)
        ref = now
        if pos.sl is not None:  # a wider SL counts from the nearer of the entry and now
            sl = pos.sl
            ref = min(
                (pos.open_price, now), key=lambda p: loss_to(pos.action, 1.0, pos.symbol, p, sl)
            )
        self.touched.append(Touch(agent, pos.ticket, ref, limit, what))

    def published(self, instance: str, channel: str, key: str | None, data: Any) -> None:
        """Every publication of every hub instance: the order events are kept."""
        tracked = ("filled", "closed", "modified")
        if isinstance(data, OrderEvent) and data.ticket is not None and data.event in tracked:
            self.events[(data.agent_id, data.ticket)].append((instance, data))

    # -- what a hub reported ---------------------------------------------------------------

    def reported_closed(
        self, agent: str, ticket: int, asked: float | None, lots: float, what: str
    ) -> None:
        if asked is None:
            self.full_closes[(agent, ticket)] = what
        else:
            self.part_closes[(agent, ticket)] += lots

    def reported_all_closed(self, agent: str, result: dict[str, Any], what: str) -> None:
        for entry in result.get("results", []):
            if entry.get("ok"):
                self.full_closes[(agent, entry["ticket"])] = f"{what} of {agent}"

    def lifted(self, agent: str) -> None:
        self.halted.pop(agent, None)

    # -- the invariants ----------------------------------------------------------------------

    def check(self) -> None:
        try:  # the exact invariants first, the limits with a tolerance last
            self.check_gates()
            self.check_max_positions()
            self.check_closes()
            self.check_idempotency()
            self.check_events()
            self.check_per_trade()
            self.check_daily()
            self.check_exposure()
        finally:
            self.touched.clear()
            self.seen = {key: quotes[-1:] for key, quotes in self.seen.items()}

    def check_max_positions(self) -> None:
        for agent in AGENTS:
            held = self.markets[agent].positions()
            limit = CONFIG.agents[agent].risk.max_positions
            assert len(held) <= limit, (
                f"[1 max_positions] {agent}'s bridge holds {len(held)} positions, "
                f"max_positions {limit}: {[(p.ticket, p.symbol, p.lots) for p in held]}"
            )

    def check_per_trade(self) -> None:
        for t in self.touched:
            market = self.markets[t.agent]
            pos = next((p for p in market.positions() if p.ticket == t.ticket), None)
            if pos is None:
                continue  # closed within the step: it risks nothing now
            risk = math.inf
            if pos.sl is not None:
                loss = max(0.0, loss_to(pos.action, pos.lots, pos.symbol, t.ref, pos.sl))
                risk = usd(market, pos.symbol, loss)
            assert risk <= t.limit * (1 + TOLERANCE) + CENT, (
                f"[2a max_risk_per_trade] after {t.what} on {t.agent}: ticket {pos.ticket} "
                f"{pos.action} {pos.lots} {pos.symbol} from {t.ref} to SL {pos.sl} risks "
                f"{risk:.2f} USD, per-trade limit {t.limit:.2f} (+10 %)"
            )

    def check_daily(self) -> None:
        for agent in sorted({t.agent for t in self.touched}):
            market = self.markets[agent]
            start = self.start_equity(agent)
            limit = daily_limit(agent, start)
            equity = market.account().equity
            loss = max(0.0, start - equity)
            held = market.positions()
            risk = sum(self.held_risk(agent, p) for p in held)
            assert loss + risk <= limit * (1 + TOLERANCE) + CENT, (
                f"[2b daily_loss] {agent} on {self.day()}: loss_today {loss:.2f} + open risk "
                f"{risk:.2f} = {loss + risk:.2f} USD > daily limit {limit:.2f} (+10 %) "
                f"(start-of-day equity {start:.2f}, equity {equity:.2f}; positions "
                f"{[(p.ticket, p.symbol, p.action, p.lots, p.sl) for p in held]}; "
                f"orders this step: {[t.what for t in self.touched if t.agent == agent]})"
            )

    def check_exposure(self) -> None:
        if not self.touched:
            return
        held = {a: sum(self.held_risk(a, p) for p in self.markets[a].positions()) for a in AGENTS}
        equity = sum(m.account().equity for m in self.markets.values())
        limit = MAX_EXPOSURE * max(equity, 0.0)
        total = sum(held.values())
        assert total <= limit * (1 + TOLERANCE) + CENT, (
            f"[2c max_total_exposure] open risk {total:.2f} USD over all bridges "
            f"({', '.join(f'{a} {r:.2f}' for a, r in held.items())}) > {MAX_EXPOSURE:g} x total "
            f"equity {equity:.2f} = {limit:.2f} (+10 %); orders this step: "
            f"{[f'{t.agent}: {t.what}' for t in self.touched]}"
        )

    def check_gates(self) -> None:
        assert not self.gate_breaches, f"[3 gates] {self.gate_breaches[0]}"

    def check_closes(self) -> None:
        held = {(a, p.ticket): p.lots for a, p in self.positions()}
        for key, what in self.full_closes.items():
            assert key not in held, (
                f"[4 closes] the hub reported {what} done for ticket {key[1]} of {key[0]}, "
                f"but the bridge still holds it with {held.get(key)} lots"
            )
        for key, lots in self.part_closes.items():
            fill = self.fills.get(key)
            if key in held and fill is not None:
                assert held[key] <= fill.lots - lots + EPS, (
                    f"[4 closes] the hub reported {lots:g} of ticket {key[1]} ({key[0]}, filled "
                    f"{fill.lots:g}) closed, but the bridge still holds {held[key]:g} lots"
                )

    def check_idempotency(self) -> None:
        twice = {k: n for k, n in self.tags.items() if n > 1}
        tickets = [(f.agent, f.ticket) for f in self.fills.values() if (f.agent, f.tag) in twice]
        assert not twice, (
            f"[5 idempotency] order tags filled more than once (agent, tag): {twice}; "
            f"tickets {tickets}"
        )

    def check_events(self) -> None:
        for (agent, ticket), seen in self.events.items():
            fill = self.fills.get((agent, ticket))
            story = [(name, e.event, e.command, e.lots) for name, e in seen]
            filled = [e for _, e in seen if e.event == "filled"]
            assert len(filled) <= 1, f"[6 events] ticket {ticket} of {agent} filled twice: {story}"
            assert fill is not None, (
                f"[6 events] events for ticket {ticket} of {agent}, which its bridge never "
                f"filled: {story}"
            )
            assert all(abs((e.lots or 0) - fill.lots) < EPS for e in filled), (
                f"[6 events] ticket {ticket} of {agent} filled {fill.lots} at the bridge: {story}"
            )
            closed = 0.0
            for _, e in seen:
                assert closed < fill.lots - EPS, (
                    f"[6 events] ticket {ticket} of {agent} (filled {fill.lots}) has events after "
                    f"it was fully closed: {story}"
                )
                if e.event == "closed":
                    closed += e.lots or 0.0
            assert closed <= fill.lots + EPS, (
                f"[6 events] ticket {ticket} of {agent} filled {fill.lots} lots, closed "
                f"{closed:g}: {story}"
            )
