"""Per-connection delivery: a bounded outbound queue, written directly or by a writer task.

- Every item is one encoded server message (a ``str``); the fan-out pushes the same
  frame object to many outboxes without awaiting.
- State items conflate to the latest value per (channel, key) only while the client
  is behind (more than ``soft_limit`` items queued); a client that keeps up sees every seq.
- Events, snapshots and replies are never dropped: past ``hard_limit`` queued items the
  outbox *overflows* — it empties itself, refuses further items and calls ``on_overflow``;
  the owner then sends ``slow_consumer`` and closes with 4008. Memory stays bounded.

Two ways out, the same semantics:

- **Direct** (:meth:`Outbox.attach` to a :class:`Sink` and the node's shared
  :class:`~channels.lane.Lane`): while the connection keeps up, ``put`` only appends to a
  pending list and, once, asks the lane for a turn: at the end of the loop iteration (one
  frame per message), or for ``batch`` connections under load on the lane's one shared
  timer (all pending messages in one frame, one JSON object per line). No task, no wake-up
  per message; the frame bytes come from the lane's memo, built once per group of
  connections with the same pending messages. While the sink is paused (its buffer is
  full) messages queue, conflate and overflow as above; the sink's ``on_writable`` drains
  the queue.
- **Writer task** (:meth:`Outbox.run`, any async ``send``): the queue is drained by a task,
  one message per frame, or with ``batch`` all that is queued packed into one frame.

In both, a batched connection is *under load* when its last frame carried several
messages, or when it already sent two frames within one ``flush_interval``; only then is
its next message held, until ``flush_interval`` after the last frame
(:meth:`Outbox.batch_due`). Otherwise every message goes out at once, so batching adds
latency only under load. An idle connection gets ``heartbeat_frame()`` every
``heartbeat`` seconds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from channels.lane import Flushed, Lane

__all__ = ["Item", "Member", "Outbox", "Pacing", "Sink"]

_BATCH_ITEMS = 1024
_DRAIN_FRAMES = 64  # one-frame messages per write while draining a backlog


class Sink(Protocol):
    """Where a direct outbox writes complete frame bytes (see :mod:`channels.uvicorn_ws`)."""

    on_writable: Callable[[], None] | None

    @property
    def closed(self) -> bool: ...

    @property
    def writable(self) -> bool: ...

    def write(self, data: bytes) -> bool: ...

    def offer(self, data: bytes) -> bool:
        """Write ``data`` if writable (not paused, not closed); False: nothing written."""


class Member(Protocol):
    """Who an outbox tells that it has caught up (a :class:`~channels.feed.Feed`: it may
    then join the group of its peers, see :mod:`channels.group`)."""

    def caught_up(self) -> None: ...


class Carrier(Protocol):
    """A group an outbox's connection is in (see :mod:`channels.group`)."""

    @property
    def last_send(self) -> float: ...

    def carry(self, outbox: Outbox) -> None:
        """Write the message just added to ``outbox``'s pending list at the group's next
        turn, behind what the group held when it was put: while a connection is in a
        group, the group's turn writes everything it is sent, in the order it was put."""


class Pacing:
    """The batching rule of one writer (an outbox, or a group of them): see the module doc."""

    def __init__(self, flush_interval: float = 0.01) -> None:
        self._flush_interval = flush_interval
        self._last_send = -1e9  # when the last frame left (or the heartbeat was armed)
        self._last_count = 0  # messages in the last frame
        self._window = (-1e9, 0)  # (start, frames since): frames per flush_interval

    @property
    def last_send(self) -> float:
        return self._last_send

    def batch_due(self) -> float:
        """When a batched writer's next frame may leave (see the module doc)."""
        if self._last_count > 1 or self._window[1] > 1:
            return self._last_send + self._flush_interval
        return -1e9

    def _sent(self, now: float, messages: int) -> None:
        """Record a frame of ``messages`` messages written at ``now``."""
        start, frames = self._window
        self._window = (start, frames + 1) if now - start < self._flush_interval else (now, 1)
        self._last_send, self._last_count = now, messages


class Item:
    """One queued message; ``frame`` is None once a newer state value replaced it."""

    __slots__ = ("channel", "frame", "key", "seq")

    def __init__(self, frame: str, channel: str | None, seq: int, key: str | None) -> None:
        self.frame: str | None = frame
        self.channel = channel
        self.seq = seq
        self.key = key


class Outbox(Pacing):
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
        super().__init__()
        self._soft = soft_limit
        self._hard = hard_limit
        self._on_overflow = on_overflow
        self._queue: deque[Item] = deque()
        self._slots: dict[tuple[str, str | None], Item] = {}
        self._live = 0
        self._dead = 0
        self._ready: asyncio.Event | None = None
        self._overflowed = False
        self.conflated = 0
        self._batch = False
        # direct mode (attach): messages waiting for the lane's turn, while nothing is queued
        self._sink: Sink | None = None
        self._lane: Lane | None = None
        self._pending: list[str] = []
        self._scheduled = False  # a turn is asked of the lane and has not come yet
        self._carried = False  # the pending messages wait for the group's turn
        self._beat: asyncio.TimerHandle | None = None
        self.member: Member | None = None  # told when this outbox has caught up
        self.group: Carrier | None = None  # the group writing this connection's shared frames

    def __len__(self) -> int:
        """Messages queued and not yet handed to the writer."""
        return self._live + len(self._pending)

    @property
    def sink(self) -> Sink | None:
        """The direct sink (None: a writer task drains this outbox)."""
        return self._sink

    @property
    def lane(self) -> Lane | None:
        return self._lane

    @property
    def mode(self) -> tuple[bool, float, int, int]:
        """What makes two outboxes deliver alike: batching, its interval, and the limits."""
        return (self._batch, self._flush_interval, self._soft, self._hard)

    @property
    def idle(self) -> bool:
        """Nothing queued or pending, a writable direct sink: caught up."""
        sink = self._sink
        return (
            not self._live
            and not self._pending
            and not self._overflowed
            and sink is not None
            and sink.writable
        )

    @property
    def overflowed(self) -> bool:
        """True once the outbox gave up on this consumer (see :meth:`overflow`)."""
        return self._overflowed

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
        if self._overflowed:
            return
        lane = self._lane
        if lane is not None and not self._live:
            pending = self._pending
            pending.append(frame)
            group = self.group
            if group is not None:
                group.carry(self)  # the group's turn writes it, in order with its own
                self._carried = True
            elif not self._scheduled:
                self._schedule(lane)
            elif len(pending) >= self._soft and group is None:  # a burst: write now
                lane.flush_now(self)
                self._scheduled = True  # the turn asked for is still to come
            return
        self.enqueue(frame, channel=channel, seq=seq, key=key, state=state)

    def enqueue(
        self,
        frame: str,
        *,
        channel: str | None = None,
        seq: int = 0,
        key: str | None = None,
        state: bool = False,
    ) -> None:
        """Queue one message behind the backlog (conflating, overflowing), never direct."""
        if self._overflowed:
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
        if self._ready is not None:
            self._ready.set()

    @property
    def pending(self) -> list[str]:
        """Messages waiting for a turn (direct mode, nothing queued)."""
        return self._pending

    def take_pending(self) -> list[str]:
        """Hand over what waits for a turn (a group writes it with its own, see ``carry``)."""
        pending, self._pending = self._pending, []
        self._carried = False
        return pending

    def overflow(self) -> None:
        """Give up on this consumer: drop everything, refuse more, tell the owner once."""
        if self._overflowed:
            return
        self._overflowed = True
        self._queue.clear()
        self._slots.clear()
        self._pending = []
        self._live = self._dead = 0
        if self._ready is not None:
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
        if not self._live and self._ready is not None:
            self._ready.clear()
        return out

    # -- direct mode -------------------------------------------------------------------------

    def attach(
        self,
        sink: Sink,
        lane: Lane,
        *,
        batch: bool = False,
        flush_interval: float = 0.01,
        heartbeat: float | None = None,
        heartbeat_frame: Callable[[], str] | None = None,
    ) -> None:
        """Write directly to ``sink`` through ``lane`` from now on (see the module doc)."""
        self._sink = sink
        self._lane = lane
        self._batch = batch
        self._flush_interval = flush_interval
        sink.on_writable = self._drain
        queued = [i.frame for i in self.take(self._live) if i.frame is not None]
        self._pending = queued + self._pending
        if self._pending and not self._scheduled:
            self._schedule(lane)
        if heartbeat is not None and heartbeat_frame is not None:
            self._arm(heartbeat, heartbeat_frame)

    def detach(self) -> None:
        """Stop direct writing; what is pending or queued is written now if the sink allows."""
        sink, lane = self._sink, self._lane
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None
        if sink is None or lane is None:
            return
        sink.on_writable = None
        if not self._overflowed and not sink.closed:
            texts = [i.frame for i in self.take(self._live) if i.frame is not None]
            texts += self._pending
            if texts:
                sink.write(lane.frames(texts, self._batch, shared=False))
        self._pending = []
        self._sink = None
        self._lane = None

    def flush(self, now: float) -> Flushed:
        """The lane's turn: write the pending messages as one write (or queue them if the
        sink is full or a backlog is queued, so order holds)."""
        self._scheduled = False
        if self._carried:
            return "idle"  # its group writes them, in order with the group's own
        sink, lane, pending = self._sink, self._lane, self._pending
        if sink is None or lane is None or self._overflowed or not pending:
            return "idle"
        self._pending = []
        if sink.closed:
            return "idle"  # the session ends through its reader
        if self._live or not sink.writable:
            self._spill(pending)
            return "spilled"
        sink.write(lane.frames(pending, self._batch))
        self._sent(now, len(pending))
        if self.member is not None and self.group is None and sink.writable:
            self.member.caught_up()
        return "written"

    def _schedule(self, lane: Lane) -> None:
        """Ask ``lane`` for a turn: at once, or when a batched connection under load is due."""
        self._scheduled = True
        if self._batch:
            due = self.batch_due()
            if due > lane.now():
                lane.at(self, due)
                return
        lane.soon(self)

    def _spill(self, frames: list[str]) -> None:
        """Queue ``frames`` behind the backlog (the sink is full): they queue, never conflate."""
        queue = self._queue
        for frame in frames:
            queue.append(Item(frame, None, 0, None))
        self._live += len(frames)
        if self._live > self._hard:
            self.overflow()

    def _drain(self) -> None:
        """The sink has room again: write the backlog (until it is full again)."""
        sink, lane = self._sink, self._lane
        if sink is None or lane is None:
            return
        limit = _BATCH_ITEMS if self._batch else _DRAIN_FRAMES
        while self._live and sink.writable:
            texts = [i.frame for i in self.take(limit) if i.frame is not None]
            if texts:
                sink.write(lane.frames(texts, self._batch, shared=False))
                self._sent(lane.now(), len(texts))
        if self._pending and not self._scheduled:
            self._schedule(lane)
        elif self.member is not None and self.group is None and self.idle:
            self.member.caught_up()

    def _arm(self, heartbeat: float, heartbeat_frame: Callable[[], str]) -> None:
        loop = asyncio.get_running_loop()

        def beat() -> None:
            self._beat = None
            if self._sink is None or self._sink.closed or self._overflowed:
                return
            last = self._last_send
            if self.group is not None:
                last = max(last, self.group.last_send)
            idle = loop.time() - last
            if idle >= heartbeat * 0.999 and not self._pending and not self._live:
                self.put(heartbeat_frame())
                idle = 0.0
            self._beat = loop.call_later(max(0.001, heartbeat - idle), beat)

        self._last_send = loop.time()
        self._beat = loop.call_later(heartbeat, beat)

    # -- writer task -------------------------------------------------------------------------

    async def wait(self, within: float | None = None) -> bool:
        """Wait until something is queued (or the outbox overflowed); False on timeout."""
        if self._live or self._overflowed:
            return True
        if self._ready is None:
            self._ready = asyncio.Event()
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
        self._flush_interval = flush_interval
        self._last_send = loop.time()
        while not self._overflowed:
            idle = (
                None if heartbeat is None else max(0.0, self._last_send + heartbeat - loop.time())
            )
            if not await self.wait(idle):
                if heartbeat_frame is not None:
                    await send(heartbeat_frame())
                self._sent(loop.time(), 1)
                continue
            if batch:
                pause = self.batch_due() - loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)
                items = self.take()
                if items:
                    await send("\n".join([i.frame for i in items if i.frame is not None]))
                self._sent(loop.time(), len(items))
            else:
                for item in self.take(_DRAIN_FRAMES):
                    if item.frame is not None:
                        await send(item.frame)
                self._sent(loop.time(), 1)
