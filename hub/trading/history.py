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
    capacity = 10_000  # tickets filled here and not seen closed yet (oldest forgotten first)

    def __init__(self, events: OrderEvents, coordination: Coordination) -> None:
        self.events = events
        self.coord = coordination  # closes by hub commands, on every instance
        self._opened: dict[tuple[str, int], str] = {}  # (agent, ticket) -> client_order_id
        self._started_ms = now_ms()

    def opened(self, agent_id: str, ticket: int, client_order_id: str) -> None:
        """A fill of this hub: its records are completed with ``client_order_id``."""
        self._opened[(agent_id, ticket)] = client_order_id
        # With other instances, another may close it and read it in the history: then it
        # is never popped here. Forgetting the oldest only leaves a record without its id.
        while len(self._opened) > self.capacity:
            del self._opened[next(iter(self._opened))]

    async def closing(self, agent: AgentRuntime, ticket: int, lots: float) -> None:
        """A close command is about to be sent: should the poller read it in the history
        before the command has its answer, it is the command's to announce, not news."""
        await self.coord.mark_hub_close(agent.id, ticket, lots)

    async def not_closed(self, agent: AgentRuntime, ticket: int, lots: float) -> None:
        """The close was refused or never reached the bridge: forget the mark."""
        try:
            await self.coord.take_hub_close(agent.id, ticket, lots)
        except HubError as exc:  # it only stops one announcement of a later close
            log.error("hub_close_unmark_failed agent=%s ticket=%s error=%r",
                      agent.id, ticket, exc.message)  # fmt: skip

    def closed_by_hub(self, agent: AgentRuntime, trade: ClosedTrade) -> None:
        """A close command of this hub, confirmed: its record is completed now."""
        key = (agent.id, trade.ticket)
        self.events.journal.trade_closed(agent.id, trade, self._opened.pop(key, None))

    async def seen(self, agent: AgentRuntime, trades: list[ClosedTrade]) -> None:
        """Closed trades read from ``agent``'s bridge history. Each is handled by one
        instance only (two may poll one agent around a lease hand-over); one that a hub
        command closed is that command's to announce."""
        for trade in trades:
            key = (agent.id, trade.ticket)
            coid = self._opened.pop(key, None)
            self.events.journal.trade_closed(agent.id, trade, coid)
            if trade.close_time < self._started_ms:
                continue  # closed before this hub started: recorded, not news
            row = f"{agent.id}:{trade.ticket}:{trade.close_time}:{trade.lots:.8f}"
            if not await self.coord.claim(row):
                continue  # another instance (or an earlier read) handled it
            if await self.coord.take_hub_close(agent.id, trade.ticket, trade.lots):
                continue
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
