"""The hub's single way onto the broker: state channels only when changed, events always.

Observers (the records writer, the risk engine's return window) are called synchronously
after each publication; they must not block (they queue).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from channels.broker import Broker, Publication
from channels.names import SUMMARY, AgentKind, agent_channel
from hub.bridge.models import Tick

__all__ = ["Observer", "Publisher"]

Observer = Callable[[str, str | None, Any], None]  # (channel, key, data)

_encode = msgspec.json.Encoder().encode


class Publisher:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._last: dict[tuple[str, str | None], bytes] = {}
        self._seq: dict[tuple[str, str | None], int] = {}  # of the value in _last
        self.observers: list[Observer] = []

    async def _publish(self, channel: str, data: Any, key: str | None) -> Publication:
        pub = await self.broker.publish(channel, data, key=key)
        for observer in self.observers:
            observer(channel, key, data)
        return pub

    async def state_channel(self, channel: str, data: Any, key: str | None = None) -> bool:
        """Publish ``data`` on a state channel if it differs from the last value published."""
        encoded = _encode(data)
        if self._last.get((channel, key)) == encoded:
            return False
        pub = await self._publish(channel, data, key)  # remembered only once really published
        self._last[(channel, key)] = encoded
        self._seq[(channel, key)] = pub.seq
        return True

    def remember(self, pub: Publication) -> None:
        """A newer value another instance published on a state channel this one feeds: the
        next value is compared with it, so a change back is published, never swallowed."""
        slot = (pub.channel, pub.key)
        if pub.seq > self._seq.get(slot, 0):
            self._last[slot] = bytes(pub.data)
            self._seq[slot] = pub.seq

    async def state(self, agent_id: str, kind: AgentKind, data: Any) -> bool:
        return await self.state_channel(agent_channel(agent_id, kind), data)

    async def tick(self, agent_id: str, tick: Tick) -> None:
        """Ticks are published by the poller only when bid or ask moved."""
        await self._publish(agent_channel(agent_id, "ticks"), tick, tick.symbol)

    async def candle(self, agent_id: str, bar: Any, key: str) -> None:
        """A bar as it stands after a tick (``key``: ``{symbol}:{tf}``); every bid changes it."""
        await self._publish(agent_channel(agent_id, "candles"), bar, key)

    async def summary(self, data: Any) -> bool:
        return await self.state_channel(SUMMARY, data)

    async def event(self, channel: str, data: Any) -> Publication:
        return await self._publish(channel, data, None)
