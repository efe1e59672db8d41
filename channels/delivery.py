"""Per-connection delivery: a bounded outbound queue drained by the connection's own writer.

- Every item is one encoded server message (a ``str``); the fan-out pushes the same
  frame object to many outboxes without awaiting.
- State items conflate to the latest value per (channel, key) only while the client
  is behind (more than ``soft_limit`` items queued); a client that keeps up sees every seq.
- Events, snapshots and replies are never dropped: past ``hard_limit`` queued items the
  outbox *overflows* — it empties itself, refuses further items and calls ``on_overflow``;
  the owner then sends ``slow_consumer`` and closes with 4008. Memory stays bounded.
- :meth:`Outbox.run` is the WebSocket writer: one message per frame, or with ``batch`` all
  that is queued packed into one frame, one JSON object per line. A lone message after an
  idle period goes out at once; after a send the next frame waits at most
  ``flush_interval`` to pack more. An idle connection gets ``heartbeat_frame()``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["Item", "Outbox"]

_BATCH_ITEMS = 1024


class Item:
    """One queued message; ``frame`` is None once a newer state value replaced it."""

    __slots__ = ("channel", "frame", "key", "seq")

    def __init__(self, frame: str, channel: str | None, seq: int, key: str | None) -> None:
        self.frame: str | None = frame
        self.channel = channel
        self.seq = seq
        self.key = key


class Outbox:
    """A bounded, conflating outbound queue for one connection."""

    def __init__(
        self,
        *,
        soft_limit: int = 256,
        hard_limit: int = 4096,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        if not 0 < soft_limit < hard_limit:
            raise ValueError(
                f"outbox limits: need 0 < soft_limit < hard_limit, got "
                f"{soft_limit} and {hard_limit}"
            )
        self._soft = soft_limit
        self._hard = hard_limit
        self._on_overflow = on_overflow
        self._queue: deque[Item] = deque()
        self._slots: dict[tuple[str, str | None], Item] = {}
        self._live = 0
        self._dead = 0
        self._ready = asyncio.Event()
        self.overflowed = False
        self.conflated = 0

    def __len__(self) -> int:
        """Messages queued and not yet handed to the writer."""
        return self._live

    def put(
        self,
        frame: str,
        *,
        channel: str | None = None,
        seq: int = 0,
        key: str | None = None,
        state: bool = False,
    ) -> None:
        """Queue one message; ``state=True`` lets a newer value replace it while behind."""
        if self.overflowed:
            return
        item = Item(frame, channel, seq, key)
        if state and channel is not None:
            slot = (channel, key)
            if self._live >= self._soft:
                old = self._slots.get(slot)
                if old is not None and old.frame is not None:
                    old.frame = None
                    self._live -= 1
                    self._dead += 1
                    self.conflated += 1
            self._slots[slot] = item
        self._queue.append(item)
        self._live += 1
        if self._live > self._hard:
            self.overflow()
            return
        if self._dead > self._soft and self._dead > self._live:
            self._queue = deque(i for i in self._queue if i.frame is not None)
            self._dead = 0
        self._ready.set()

    def overflow(self) -> None:
        """Give up on this consumer: drop everything, refuse more, tell the owner once."""
        if self.overflowed:
            return
        self.overflowed = True
        self._queue.clear()
        self._slots.clear()
        self._live = self._dead = 0
        self._ready.set()
        if self._on_overflow is not None:
            self._on_overflow()

    def take(self, limit: int = _BATCH_ITEMS) -> list[Item]:
        """Remove and return up to ``limit`` queued messages, oldest first (no waiting)."""
        out: list[Item] = []
        queue, slots = self._queue, self._slots
        while queue and len(out) < limit:
            item = queue.popleft()
            if item.frame is None:
                self._dead -= 1
                continue
            out.append(item)
            if item.channel is not None and slots.get((item.channel, item.key)) is item:
                del slots[(item.channel, item.key)]
        self._live -= len(out)
        if not self._live:
            self._ready.clear()
        return out

    async def wait(self, within: float | None = None) -> bool:
        """Wait until something is queued (or the outbox overflowed); False on timeout."""
        if self._live or self.overflowed:
            return True
        try:
            async with asyncio.timeout(within):
                await self._ready.wait()
        except TimeoutError:
            return False
        return True

    async def run(
        self,
        send: Callable[[str], Awaitable[None]],
        *,
        batch: bool = False,
        flush_interval: float = 0.01,
        heartbeat: float | None = None,
        heartbeat_frame: Callable[[], str] | None = None,
    ) -> None:
        """Drain the queue into ``send`` until the outbox overflows (then return)."""
        loop = asyncio.get_running_loop()
        last_send = loop.time() - flush_interval
        while not self.overflowed:
            idle = None if heartbeat is None else max(0.0, last_send + heartbeat - loop.time())
            if not await self.wait(idle):
                if heartbeat_frame is not None:
                    await send(heartbeat_frame())
                last_send = loop.time()
                continue
            if batch:
                pause = last_send + flush_interval - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)
                items = self.take()
                if items:
                    await send("\n".join([i.frame for i in items if i.frame is not None]))
            else:
                for item in self.take(64):
                    if item.frame is not None:
                        await send(item.frame)
            last_send = loop.time()
