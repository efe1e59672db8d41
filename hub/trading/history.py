"""Closed trades from the bridge's history: records completed, outside closes announced.

A position can close without a hub command: its SL or TP triggers, or someone closes it
in the terminal. The pollers hand every history read to :meth:`ClosedTrades.seen`; each
closed ticket completes its trade record (with the ``client_order_id`` it was opened
under, when this hub opened it), and one that the hub did not close itself is announced
as a ``closed`` order event with ``command: "bridge"``.
"""

from __future__ import annotations

from channels.clock import now_ms
from hub.agents import AgentRuntime
from hub.bridge.models import ClosedTrade
from hub.trading.events import OrderEvents
from hub.trading.models import OrderEvent

__all__ = ["ClosedTrades"]


class ClosedTrades:
    def __init__(self, events: OrderEvents) -> None:
        self.events = events
        self._opened: dict[tuple[str, int], str] = {}  # (agent, ticket) -> client_order_id
        self._closed_by_hub: set[tuple[str, int]] = set()
        self._started_ms = now_ms()

    def opened(self, agent_id: str, ticket: int, client_order_id: str) -> None:
        """A fill of this hub: its records are completed with ``client_order_id``."""
        self._opened[(agent_id, ticket)] = client_order_id

    def closed_by_hub(self, agent: AgentRuntime, trade: ClosedTrade) -> None:
        """A close command of this hub: recorded now, not announced again from history."""
        key = (agent.id, trade.ticket)
        self._closed_by_hub.add(key)
        self.events.journal.trade_closed(agent.id, trade, self._opened.pop(key, None))

    async def seen(self, agent: AgentRuntime, trades: list[ClosedTrade]) -> None:
        """Closed trades read from ``agent``'s bridge history."""
        for trade in trades:
            key = (agent.id, trade.ticket)
            coid = self._opened.pop(key, None)
            self.events.journal.trade_closed(agent.id, trade, coid)
            if key in self._closed_by_hub:
                self._closed_by_hub.discard(key)
                continue
            if trade.close_time < self._started_ms:
                continue  # closed before this hub started: recorded, not news
            event = OrderEvent(
                event="closed",
                agent_id=agent.id,
                command="bridge",
                client_order_id=coid,
                ticket=trade.ticket,
                symbol=trade.symbol,
                action=trade.action,
                lots=trade.lots,
                price=trade.close_price,
                profit=trade.profit,
                reason=trade.reason,
            )
            await self.events.emit(event, "position_closed")
