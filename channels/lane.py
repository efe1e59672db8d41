"""The shared flush of direct outboxes: one per node, whatever the number of connections.

The lane owns two things and nothing else:

- **When** scheduled outboxes are flushed. An outbox in direct mode
  (:meth:`~channels.delivery.Outbox.attach`) asks once per batch of messages to be flushed
  :meth:`Lane.soon` — at the end of the current event-loop iteration, one ``call_soon`` for
  every outbox scheduled in that iteration — or :meth:`Lane.at` a time, on one shared
  timer (batched connections under load, so what arrives meanwhile is packed into one
  frame). When its turn comes the lane calls the outbox's ``flush``; what to write, whether
  to queue instead (a full sink) and the batching rule are the outbox's.
- **The frame memo** (:meth:`Lane.frames`): connections that subscribe to the same channels
  have the same pending messages (the same ``str`` objects, in the same order), so within
  one pass their frame bytes are built once and the same ``bytes`` is written to each.

:func:`text_frame` builds one server-to-client text frame: unmasked, so the same bytes suit
every subscriber.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Literal, Protocol

__all__ = ["Flushable", "Flushed", "Lane", "text_frame"]

log = logging.getLogger(__name__)

Flushed = Literal["written", "spilled", "idle"]
"""What a flush did: wrote a frame, queued its messages (the sink was full), or nothing."""

_SHORT = struct.Struct("!BBH")
_LONG = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """One complete, unmasked, final WebSocket text frame carrying ``payload`` (UTF-8)."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return _SHORT.pack(0x81, 126, size) + payload
    return _LONG.pack(0x81, 127, size) + payload


class Flushable(Protocol):
    """What the lane schedules (a direct :class:`~channels.delivery.Outbox`)."""

    def flush(self, now: float) -> Flushed:
        """Its turn: write what is pending, built with :meth:`Lane.frames`."""


class Lane:
    """Corked direct writes, the shared batch timer and the frame memo, for one event loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._soon: list[Flushable] = []
        self._later: list[Flushable] = []
        self._timer: asyncio.TimerHandle | None = None
        self._memo: dict[tuple[int, ...], tuple[list[str], bytes]] = {}
        self.flushes = 0  # passes over scheduled outboxes
        self.writes = 0  # direct writes made by flushes
        self.built = 0  # frame payloads built (the rest were shared)
        self.spills = 0  # flushes that found the sink full and queued instead

    def now(self) -> float:
        return self._get_loop().time()

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def soon(self, outbox: Flushable) -> None:
        """Flush ``outbox`` once at the end of this event-loop iteration."""
        soon = self._soon
        soon.append(outbox)
        if len(soon) == 1:
            self._get_loop().call_soon(self._run_soon)

    def at(self, outbox: Flushable, when: float) -> None:
        """Flush ``outbox`` once on the shared timer (armed for ``when`` unless armed already)."""
        self._later.append(outbox)
        if self._timer is None:
            self._timer = self._get_loop().call_at(when, self._run_later)

    def flush_now(self, outbox: Flushable) -> None:
        """Flush ``outbox`` at once, outside a pass (a burst); its scheduled turn still comes."""
        self._count(outbox.flush(self._get_loop().time()))
        self._memo.clear()

    def frames(self, texts: list[str], batch: bool, *, shared: bool = True) -> bytes:
        """The wire bytes of ``texts``: one frame each, or one newline-joined frame if batched.

        ``shared``: within a flush, remember them for other connections with the same
        pending messages (outside a flush nothing would clear the memo).
        """
        if not shared:
            if batch:
                return text_frame("\n".join(texts).encode())
            return b"".join([text_frame(t.encode()) for t in texts])
        key = tuple(map(id, texts))
        if not batch:
            key += (0,)
        hit = self._memo.get(key)
        if hit is not None:
            return hit[1]
        self.built += 1
        if batch:
            data = text_frame("\n".join(texts).encode())
        elif len(texts) == 1:
            data = self._one(texts[0])
        else:
            data = b"".join([self._one(t) for t in texts])
        self._memo[key] = (texts, data)  # holds the texts: their ids stay unique meanwhile
        return data

    def _one(self, text: str) -> bytes:
        key = (id(text), 0)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = ([text], text_frame(text.encode()))
        return hit[1]

    def _run_soon(self) -> None:
        todo, self._soon = self._soon, []
        self._pass(todo)

    def _run_later(self) -> None:
        self._timer = None
        todo, self._later = self._later, []
        self._pass(todo)

    def _pass(self, todo: list[Flushable]) -> None:
        now = self._get_loop().time()
        writes = spills = 0
        try:
            for outbox in todo:
                try:
                    done = outbox.flush(now)
                except Exception:
                    log.exception("direct write failed; that connection's pending frames are lost")
                    continue
                if done == "written":
                    writes += 1
                elif done == "spilled":
                    spills += 1
        finally:
            self._memo.clear()
            self.writes += writes
            self.spills += spills
        self.flushes += 1

    def _count(self, done: Flushed) -> None:
        if done == "written":
            self.writes += 1
        elif done == "spilled":
            self.spills += 1
