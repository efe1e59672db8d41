"""The shared flush of direct outboxes: one per node, whatever the number of connections.

An outbox in direct mode (:meth:`~channels.delivery.Outbox.attach`) only appends to its
``pending`` list when a message arrives and asks the lane to :meth:`Lane.schedule` it once.
The lane then writes it

- *soon* — at the end of the current event-loop iteration (one ``call_soon`` for every
  outbox scheduled in that iteration): one-frame connections, and batched connections
  not under load (:meth:`Outbox.batch_due` is past);
- *later* — on one shared timer: batched connections under load (their last frame
  carried several messages, or two frames left within one ``flush_interval``), so what
  arrives meanwhile is packed into one frame.

Connections that subscribe to the same channels have the same pending messages (the
same ``str`` objects, in the same order): their frame bytes are joined and framed once
per flush and the same ``bytes`` is written to each. A connection whose sink is full
(``pause_writing``) keeps its messages in its outbox queue, where they conflate and
overflow as usual, until the sink's ``on_writable`` drains it.
"""

from __future__ import annotations

import asyncio
import logging

from channels.delivery import Outbox
from channels.uvicorn_ws import text_frame

__all__ = ["Lane"]

log = logging.getLogger(__name__)


class Lane:
    """Corked direct writes and the shared batch timer, for one event loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._soon: list[Outbox] = []
        self._later: list[Outbox] = []
        self._timer: asyncio.TimerHandle | None = None
        self._memo: dict[tuple[int, ...], tuple[list[str], bytes]] = {}
        self.flushes = 0  # passes over scheduled outboxes
        self.writes = 0  # direct writes made by passes
        self.built = 0  # frame payloads built (the rest were shared)
        self.spills = 0  # times a full sink sent pending messages to its outbox queue

    def now(self) -> float:
        return self._get_loop().time()

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def schedule(self, outbox: Outbox) -> None:
        """Write ``outbox``'s pending messages soon (or on the shared timer when batched)."""
        loop = self._get_loop()
        outbox.scheduled = True
        if outbox.batch:
            wait = outbox.batch_due() - loop.time()
            if wait > 0:
                self._later.append(outbox)
                if self._timer is None:
                    self._timer = loop.call_later(wait, self._run_later)
                return
        self._soon.append(outbox)
        if len(self._soon) == 1:
            loop.call_soon(self._run_soon)

    def flush_now(self, outbox: Outbox) -> None:
        """Write ``outbox`` at once (a burst reached its soft limit); it stays scheduled."""
        self._flush(outbox, self._get_loop().time())
        outbox.scheduled = True
        self._memo.clear()

    def frames(self, texts: list[str], batch: bool, *, shared: bool = True) -> bytes:
        """The wire bytes of ``texts``: one frame each, or one newline-joined frame if batched.

        ``shared``: within a flush pass, remember them for other connections with the same
        pending messages (outside a pass nothing would clear the memo).
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

    def _pass(self, todo: list[Outbox]) -> None:
        now = self._get_loop().time()
        try:
            for outbox in todo:
                outbox.scheduled = False
                try:
                    self._flush(outbox, now)
                except Exception:
                    log.exception("direct write failed; dropping that connection's pending frames")
                    outbox.pending = []
        finally:
            self._memo.clear()
        self.flushes += 1

    def _flush(self, outbox: Outbox, now: float) -> None:
        sink = outbox.sink
        if sink is None or outbox.overflowed or not outbox.pending:
            return
        if sink.closed:
            outbox.pending = []  # the session ends through its reader
            return
        if not sink.writable or len(outbox) > len(outbox.pending):
            outbox.spill()
            self.spills += 1
            return
        texts, outbox.pending = outbox.pending, []
        sink.write(self.frames(texts, outbox.batch))
        outbox.sent(now, len(texts))
        self.writes += 1
