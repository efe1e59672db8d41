"""What the risk engine is given: the agents' books, prices, day records, pending orders.

The pure engine (:mod:`hub.risk`) decides from a :class:`~hub.risk.RiskContext`; this
module builds one from the live state: polled accounts and positions, each agent's own
quotes (read again when older than ``risk.max_quote_age_ms``), the durable start-of-day
equity and halt, the reservations of orders checked and not yet filled, the kill switch
and the returns series (per bridge) that correlation is measured on.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from channels.clock import now_ms
from hub.agents import AgentRuntime, Registry
from hub.bridge.client import BridgeError
from hub.bridge.models import Action, Position, PositionList
from hub.errors import HubError
from hub.risk import (
    AgentBook,
    PendingOrder,
    ReturnsWindow,
    RiskContext,
    TradingState,
    trading_state,
)
from hub.trading.daily import DailyLimits
from hub.trading.models import Reservation, TradeRequest

__all__ = ["RiskInputs"]


class RiskInputs:
    def __init__(
        self, registry: Registry, emergency_stopped: Callable[[], bool], daily: DailyLimits
    ) -> None:
        self.registry = registry
        self.config = registry.config
        self._emergency_stopped = emergency_stopped
        self.daily = daily
        self.returns = ReturnsWindow(self.config.global_risk.correlation_window)

    def observe_tick(self, agent_id: str, symbol: str, bid: float, ask: float, ts: int) -> None:
        """A quote read from ``agent_id``'s bridge (correlation is measured per bridge)."""
        self.returns.observe(agent_id, symbol, bid, ask, ts)

    def context(
        self,
        agent_id: str | None = None,
        reservations: Iterable[Reservation] = (),
        positions: Mapping[str, PositionList] | None = None,
    ) -> RiskContext:
        """The risk engine's view now; prices are ``agent_id``'s own bridge quotes first
        (brokers differ), then the other agents' for symbols it does not trade.
        ``reservations``: orders checked and not yet among the positions (every instance's):
        they count as positions for ``max_positions`` and as risk for the global checks.
        ``positions``: agents whose positions are better known than the local view."""
        pending: dict[str, list[Reservation]] = {}
        for r in reservations:
            pending.setdefault(r.agent_id, []).append(r)
        books: dict[str, AgentBook] = {}
        prices: dict[str, Any] = {}
        for agent in self.registry.agents.values():
            if agent.id != agent_id:
                prices.update(agent.ticks)
        if agent_id is not None:
            prices.update(self.registry.agents[agent_id].ticks)
        for book_id, agent in self.registry.agents.items():
            listed = (positions or {}).get(book_id) or PositionList(
                positions=agent.positions, unreadable=agent.unreadable
            )
            acc = agent.account
            equity = acc.equity if acc else 0.0
            books[book_id] = AgentBook(
                config=agent.config,
                balance=acc.balance if acc else 0.0,
                equity=equity,
                start_of_day_equity=self.daily.start_equity(book_id, equity),
                positions=list(listed.positions),
                pending=[
                    PendingOrder(r.symbol, r.action, r.lots, r.sl, r.entry)
                    for r in pending.get(book_id, ())
                ],
                halted=self.daily.halted(book_id),
                quotes=dict(agent.ticks),
                unreadable=listed.unreadable,
            )
        return RiskContext(
            agents=books,
            specs=self.config.symbols,
            prices=prices,
            global_risk=self.config.global_risk,
            emergency_stop=self._emergency_stopped(),
            correlation=self.returns.correlation,
        )

    def reservation(self, agent: AgentRuntime, req: TradeRequest) -> Reservation:
        quote = agent.ticks[req.symbol]
        entry = quote.ask if req.action == "buy" else quote.bid
        return self.reserve(agent.id, req.symbol, req.action, req.lots, req.sl, entry)

    def reserve(
        self,
        agent_id: str,
        symbol: str,
        action: Action,
        lots: float,
        sl: float | None,
        entry: float,
    ) -> Reservation:
        """Risk from ``entry`` to ``sl``, counted by every check until released (or expired
        should this instance die: 3 x trade_timeout + 30 s)."""
        expires = now_ms() + int(1000 * (3 * self.config.polling.trade_timeout + 30))
        return Reservation(
            id=secrets.token_hex(8),
            agent_id=agent_id,
            symbol=symbol,
            action=action,
            lots=lots,
            sl=sl,
            entry=entry,
            expires=expires,
        )

    def widening(self, agent: AgentRuntime, position: Position, sl: float) -> Reservation:
        """The risk a wider stop adds, until the bridge confirms it: from the old stop to the
        new one."""
        entry = position.sl or position.open_price
        return self.reserve(agent.id, position.symbol, position.action, position.lots, sl, entry)

    async def fresh_quote(self, agent: AgentRuntime, symbol: str, force: bool = False) -> None:
        """The trade is checked against a quote the hub read from the bridge no longer than
        ``max_quote_age_ms`` ago (by the hub's clock: a quiet market's tick time stands
        still); an older one is read again first."""
        if symbol not in agent.config.symbols or not agent.online:
            return  # refused by the checks (allowed_symbols) or as offline
        limit = agent.config.risk.max_quote_age_ms
        max_age = limit / 1000 if limit is not None else 2 * self.config.polling.tick_interval
        read = agent.tick_read_at.get(symbol)
        if not force and read is not None and time.monotonic() - read <= max_age:
            return
        try:
            tick = await agent.client.tick(symbol)
        except BridgeError as exc:
            raise HubError(
                "stale_quote",
                f"{agent.id}: no {symbol} quote newer than {max_age * 1000:.0f} ms and the "
                f"bridge cannot give one: {exc}",
                {"symbol": symbol, "max_quote_age_ms": round(max_age * 1000)},
            ) from None
        agent.ticks[symbol] = tick
        agent.tick_read_at[symbol] = time.monotonic()

    def state_of(self, agent_id: str) -> TradingState:
        """``stopped`` | ``disabled`` | ``halted`` | ``active`` for the status channel."""
        agent = self.registry.agents[agent_id]
        if self._emergency_stopped():
            return "stopped"
        if not agent.config.enabled:
            return "disabled"
        if agent.account is None:
            return "active"
        return trading_state(self.context(agent_id), agent_id)
