"""Closed trades from the bridge's history: records completed, outside closes announced.

A position can close without a hub command: its SL or TP triggers, or someone closes it
in the terminal. The pollers hand every history read to :meth:`ClosedTrades.seen`; each
closed ticket completes its trade record (with the ``client_order_id`` it was opened
under, when this hub opened it), and one that the hub did not close itself is announced
as a ``closed`` order event with ``command: "bridge"``.
"""

from __future__ import annotations

import logging

from channels.clock import now_ms
from hub.agents import AgentRuntime
from hub.bridge.models import ClosedTrade
from hub.errors import HubError
from hub.trading.coordination import Coordination
from hub.trading.events import OrderEvents
from hub.trading.models import OrderEvent

__all__ = ["ClosedTrades"]

log = logging.getLogger("mt4hub.trading")


class ClosedTrades:
    def __init__(self, events: OrderEvents, coordination: Coordination) -> None:
        self.events = events
        self.coord = coordination  # closes by hub commands, on every instance
        self._opened: dict[tuple[str, int], str] = {}  # (agent, ticket) -> client_order_id
        self._started_ms = now_ms()

    def opened(self, agent_id: str, ticket: int, client_order_id: str) -> None:
        """A fill of this hub: its records are completed with ``client_order_id``."""
        self._opened[(agent_id, ticket)] = client_order_id

    async def closed_by_hub(self, agent: AgentRuntime, trade: ClosedTrade) -> None:
        """A close command of this hub: recorded now, not announced again from history
        (by whichever instance polls the agent)."""
        try:
            await self.coord.mark_hub_close(agent.id, trade.ticket, trade.lots)
        except HubError as exc:  # the close happened: its answer must not become an error
            log.error("hub_close_unmarked agent=%s ticket=%s error=%r: the poller may "
                      "announce it a second time", agent.id, trade.ticket, exc.message)  # fmt: skip
        key = (agent.id, trade.ticket)
        self.events.journal.trade_closed(agent.id, trade, self._opened.pop(key, None))

    async def seen(self, agent: AgentRuntime, trades: list[ClosedTrade]) -> None:
        """Closed trades read from ``agent``'s bridge history."""
        for trade in trades:
            key = (agent.id, trade.ticket)
            coid = self._opened.pop(key, None)
            self.events.journal.trade_closed(agent.id, trade, coid)
            if await self.coord.take_hub_close(agent.id, trade.ticket, trade.lots):
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
