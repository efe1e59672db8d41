"""What the risk engine is given: the agents' books, prices, baselines, in-flight orders.

The pure engine (:mod:`hub.risk`) decides from a :class:`~hub.risk.RiskContext`; this
module builds one from the live state: polled accounts and positions, each agent's own
quotes, the start-of-day equity baselines, orders sent and not answered yet, the kill
switch and the returns series that correlation is measured on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from hub.agents import Registry
from hub.bridge.models import Position
from hub.risk import (
    AgentBook,
    PendingOrder,
    ReturnsWindow,
    RiskContext,
    TradingState,
    trading_state,
)
from hub.trading.daily import DailyLimits
from hub.trading.models import Reservation

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
        positions: Mapping[str, list[Position]] | None = None,
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
            acc = agent.account
            equity = acc.equity if acc else 0.0
            books[book_id] = AgentBook(
                config=agent.config,
                balance=acc.balance if acc else 0.0,
                equity=equity,
                start_of_day_equity=self.daily.start_equity(book_id, equity),
                positions=list((positions or {}).get(book_id, agent.positions)),
                pending=[
                    PendingOrder(r.symbol, r.action, r.lots, r.sl, r.entry)
                    for r in pending.get(book_id, ())
                ],
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
