"""Broker wrappers for tests: one that really awaits, one whose history can be lost."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.broker import Broker, Handler, Publication
from channels.memory import MemoryBroker


class YieldingBroker:
    """A MemoryBroker whose reads yield to the loop before and after, like a network store."""

    def __init__(self, inner: Broker, yields: int = 3) -> None:
        self.inner = inner
        self.yields = yields

    async def _pause(self) -> None:
        for _ in range(self.yields):
            await asyncio.sleep(0)

    async def connect(self) -> None:
        await self.inner.connect()

    async def close(self) -> None:
        await self.inner.close()

    def set_handler(self, handler: Handler) -> None:
        self.inner.set_handler(handler)

    def status(self) -> dict[str, Any]:
        return self.inner.status()

    async def publish(self, channel: str, data: object, *, key: str | None = None) -> Publication:
        return await self.inner.publish(channel, data, key=key)

    async def last(self, channel: str) -> list[Publication]:
        await self._pause()
        values = await self.inner.last(channel)
        await self._pause()
        return values

    async def history(
        self, channel: str, since_seq: int, epoch: str | None = None
    ) -> list[Publication] | None:
        await self._pause()
        values = await self.inner.history(channel, since_seq, epoch)
        await self._pause()
        return values

    async def epoch(self, channel: str) -> str:
        await self._pause()
        return await self.inner.epoch(channel)

    async def channels(self, pattern: str) -> list[str]:
        await self._pause()
        return await self.inner.channels(pattern)

    async def subscribe(self, channel: str) -> None:
        await self._pause()

    async def unsubscribe(self, channel: str) -> None:
        await self._pause()


class FlushableBroker(YieldingBroker):
    """Loses all history on :meth:`flush` (a new epoch), like a Redis FLUSHALL."""

    def __init__(self, history_size: int = 100) -> None:
        super().__init__(MemoryBroker(history_size), yields=1)
        self._history_size = history_size
        self._handler: Handler | None = None

    def set_handler(self, handler: Handler) -> None:
        self._handler = handler
        self.inner.set_handler(handler)

    def flush(self) -> None:
        self.inner = MemoryBroker(self._history_size)
        if self._handler is not None:
            self.inner.set_handler(self._handler)
