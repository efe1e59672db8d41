"""What the risk engine is given: the agents' books, prices, baselines, in-flight orders.

The pure engine (:mod:`hub.risk`) decides from a :class:`~hub.risk.RiskContext`; this
module builds one from the live state: polled accounts and positions, each agent's own
quotes, the start-of-day equity baselines, orders sent and not answered yet, the kill
switch and the returns series that correlation is measured on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from hub.agents import Registry
from hub.bridge.models import TradeOrder
from hub.risk import (
    AgentBook,
    PendingOrder,
    ReturnsWindow,
    RiskContext,
    TradingState,
    trading_state,
)
from hub.trading.daily import DailyLimits

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
        self._pending: dict[str, list[PendingOrder]] = {
            agent_id: [] for agent_id in registry.agents
        }

    def observe_tick(self, agent_id: str, symbol: str, bid: float, ask: float, ts: int) -> None:
        """A quote read from ``agent_id``'s bridge (correlation is measured per bridge)."""
        self.returns.observe(agent_id, symbol, bid, ask, ts)

    @contextlib.contextmanager
    def in_flight(self, agent_id: str, order: TradeOrder) -> Iterator[None]:
        """An order sent to ``agent_id``'s bridge and not answered yet counts as a position,
        risking from its entry (the current ask for a buy, bid for a sell) to its SL."""
        tick = self.registry.agents[agent_id].ticks.get(order.symbol)
        entry = (tick.ask if order.action == "buy" else tick.bid) if tick is not None else 0.0
        sl = order.sl if tick is not None else None  # no price: counted at the budget
        pending = PendingOrder(order.symbol, order.action, order.lots, sl, entry)
        self._pending[agent_id].append(pending)
        try:
            yield
        finally:
            self._pending[agent_id].remove(pending)

    def context(self, agent_id: str | None = None) -> RiskContext:
        """The risk engine's view now; prices are ``agent_id``'s own bridge quotes first
        (brokers differ), then the other agents' for symbols it does not trade."""
        books: dict[str, AgentBook] = {}
        prices: dict[str, Any] = {}
        for agent in self.registry.agents.values():
            if agent.id != agent_id:
                prices.update(agent.ticks)
        if agent_id is not None:
            prices.update(self.registry.agents[agent_id].ticks)
        for book_id, agent in self.registry.agents.items():
            acc = agent.account
            equity = acc.equity if acc else 0.0
            books[book_id] = AgentBook(
                config=agent.config,
                balance=acc.balance if acc else 0.0,
                equity=equity,
                start_of_day_equity=self.daily.start_equity(book_id, equity),
                positions=list(agent.positions),
                pending=list(self._pending[book_id]),
                halted=self.daily.halted(book_id),
            )
        return RiskContext(
            agents=books,
            specs=self.config.symbols,
            prices=prices,
            global_risk=self.config.global_risk,
            emergency_stop=self._emergency_stopped(),
            correlation=self.returns.correlation,
        )

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
