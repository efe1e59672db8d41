"""Two instances on one Redis: one ``closed`` per close, and no phantom position."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec

from channels.memory import MemoryBroker
from hub.bridge.models import Position
from hub.publisher import Publisher
from hub.supervisor import Mirror
from hub.trading.coordination import RedisCoordination
from hub.trading.events import OrderEvents
from hub.trading.history import ClosedTrades
from hub.trading.models import CloseRequest, TradeRequest
from tests.hub.trading.kit import trading_kit
from tests.rediskit import redis_prefix


async def test_a_close_made_through_one_instance_is_not_announced_again_by_the_poller(
    redis_url: str, tmp_path: Path
) -> None:
    prefix = redis_prefix()
    closer = RedisCoordination(redis_url, "b", tmp_path / "b", prefix=prefix)
    poller = RedisCoordination(redis_url, "a", tmp_path / "a", prefix=prefix)
    async with trading_kit() as kit:
        kit.market("agent_1").pin("XAUUSD", 2650.0, 2650.3)
        await kit.poll("agent_1")
        buy = TradeRequest(symbol="XAUUSD", action="buy", lots=0.01, sl=2648.5)
        ticket = (await kit.trading.open("agent_1", buy, by="t"))["ticket"]
        on_a = ClosedTrades(OrderEvents(kit.trading.publisher, kit.trading.events.journal), poller)
        await asyncio.sleep(0.002)
        await kit.poll("agent_1")  # the bridge's clock moves past instance A's start
        kit.trading.closed = ClosedTrades(kit.trading.events, closer)  # instance B closes
        await kit.trading.close("agent_1", CloseRequest(ticket=ticket), by="t")
        await on_a.seen(kit.registry.agents["agent_1"], kit.market("agent_1").history())
        closed = [e for e in await kit.orders("agent_1") if e["event"] == "closed"]
        assert [(e["ticket"], e["command"]) for e in closed] == [(ticket, "close")]
    await closer.close()
    await poller.close()


async def test_the_poller_publishes_a_state_another_instance_changed_behind_it() -> None:
    broker = MemoryBroker()
    await broker.connect()
    publisher = Publisher(broker)  # instance A, which polls agent_1
    empty = {"positions": []}
    assert await publisher.state("agent_1", "positions", empty)
    mirror = Mirror(MagicRegistry(), lambda _: True, lambda _: None, publisher.remember)
    position = Position(
        ticket=1001, symbol="XAUUSD", action="buy", lots=0.01, open_price=2650.3, sl=2648.5
    )
    # Instance B fills and publishes; the fill is closed (SL) before A's next poll.
    pub = await broker.publish("agent:agent_1:positions", {"positions": [position]})
    mirror.on_publication(pub, "")
    assert await publisher.state("agent_1", "positions", empty), "the close was swallowed"
    last = await broker.last("agent:agent_1:positions")
    assert msgspec.json.decode(last[0].data) == empty
    await broker.close()


class MagicRegistry:
    """Just enough of a registry for the mirror: agent_1 exists."""

    def get(self, agent_id: str) -> object:
        return type("Agent", (), {"id": agent_id})()
