"""A poll that read positions before a fill never overwrites the fill (max_positions holds)."""

from __future__ import annotations

import asyncio

from channels.memory import MemoryBroker
from hub.errors import HubError
from hub.polling import AgentPoller
from hub.publisher import Publisher
from hub.trading.models import TradeRequest
from tests.hub.trading.kit import trading_kit


async def test_a_poll_read_started_before_a_fill_does_not_erase_it() -> None:
    async with trading_kit() as kit:
        kit.market("agent_1").pin("XAUUSD", 2650.0, 2650.3)
        await kit.poll("agent_1")
        agent = kit.registry.agents["agent_1"]
        broker = MemoryBroker()
        await broker.connect()
        poller = AgentPoller(agent, kit.config.polling, Publisher(broker), lambda _: None)
        kit.bridge("agent_1").tick_delay = 0.05  # positions are read at once, quotes later
        poll = asyncio.create_task(poller.poll_once())
        await asyncio.sleep(0.01)  # the poll has read [] and waits for its quotes
        buy = TradeRequest(symbol="XAUUSD", action="buy", lots=0.01, sl=2648.5)
        await kit.trading.open("agent_1", buy, by="t")
        await poll
        assert len(agent.positions) == 1
        kit.bridge("agent_1").tick_delay = 0.0
        try:
            await kit.trading.open("agent_1", buy, by="t")
        except HubError as exc:
            assert exc.details is not None and exc.details["check"] == "max_positions"
        assert kit.market("agent_1").orders_filled == 1
        await broker.close()


async def test_the_first_positions_read_is_published_even_when_empty() -> None:
    async with trading_kit() as kit:
        agent = kit.registry.agents["agent_1"]
        broker = MemoryBroker()
        await broker.connect()
        poller = AgentPoller(agent, kit.config.polling, Publisher(broker), lambda _: None)
        await poller.poll_once()
        last = await broker.last("agent:agent_1:positions")
        assert [bytes(p.data) for p in last] == [b'{"positions":[]}']
        await broker.close()
