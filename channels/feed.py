"""One connection's subscriptions: snapshot or replay first, then live events, no gap, no dup.

Subscribing is race-free even when the broker's ``last``/``history`` really await
(Redis): the subscription is registered first and live publications for it are
buffered; then the snapshot (or the history after ``since``) is fetched, announced
and queued; then the buffer is released, dropping every publication with a seq at
or below what was already queued for that channel. For ticks the snapshot is one
consistent read of every symbol, so the channel-wide seq is the right cut.

When a publication arrives with a new epoch for a live channel (its history was
lost), the channel is resynced the same way and announced with a ``subscribed``
message without ``id`` (``recovered: false``) followed by fresh snapshots.

A feed whose outbox has caught up joins the :class:`~channels.group.Group` of its peers
(same subscriptions, agents and delivery mode): the node then hands publications to the
group, which keeps the same epoch and seq per channel for all its members. The feed leaves
before its subscriptions change, on close, when its sink pauses or on a new epoch, and
takes the group's positions with it (see :mod:`channels.group`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Mapping

import msgspec

from channels import names
from channels.broker import Publication
from channels.delivery import Outbox
from channels.node import YIELD_EVERY, Node
from channels.protocol import Event, SincePosition, Snapshot, Subscribed, encode

__all__ = ["Announce", "Feed", "SyncResult"]

log = logging.getLogger(__name__)


class SyncResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a subscribe resolved to: per concrete channel, recovered or not, and its epoch."""

    recovered: dict[str, bool]
    epochs: dict[str, str]


Announce = Callable[[SyncResult], None]


class _Stream:
    __slots__ = ("epoch", "pending", "seq", "state")

    def __init__(self, channel: str, epoch: str) -> None:
        self.epoch = epoch
        self.seq = 0
        self.state = names.is_state(channel)
        self.pending: list[tuple[Publication, str]] | None = None


class _Plan:
    __slots__ = ("channel", "epoch", "frames", "recovered", "seq")

    def __init__(
        self, channel: str, recovered: bool, epoch: str, frames: list[tuple[str, int]], seq: int
    ) -> None:
        self.channel = channel
        self.recovered = recovered
        self.epoch = epoch
        self.frames = frames
        self.seq = seq


class Feed:
    """The :class:`~channels.node.Subscriber` of one connection, writing into its outbox."""

    def __init__(
        self,
        node: Node,
        outbox: Outbox,
        *,
        agents: frozenset[str] | None = None,
        max_pending: int = 4096,
    ) -> None:
        self._node = node
        self._broker = node.broker
        self._outbox = outbox
        self._agents = agents
        self._max_pending = max_pending
        self._names: set[str] = set()
        self._streams: dict[str, _Stream] = {}
        self._syncing = 0
        self._resyncs: dict[str, asyncio.Task[None]] = {}
        outbox.member = self

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    @property
    def positions(self) -> Mapping[str, _Stream]:
        """Per channel seen: its epoch and the last seq queued (for :mod:`channels.group`)."""
        return self._streams

    def group_key(self) -> Hashable | None:
        """What peers in one group share; None while syncing or with nothing subscribed."""
        if self._syncing or self._resyncs or not self._names:
            return None
        return (frozenset(self._names), self._agents, self._outbox.mode)

    def adopt(self, channel: str, epoch: str, seq: int) -> None:
        """Take a group's position in ``channel`` (this feed leaves it)."""
        stream = self._streams.get(channel)
        if stream is None:
            stream = self._streams[channel] = _Stream(channel, epoch)
        stream.epoch, stream.seq = epoch, seq

    def caught_up(self) -> None:
        """The outbox has nothing queued: join the group of peers in the same state."""
        self._node.groups.join(self)

    @property
    def agents(self) -> frozenset[str] | None:
        return self._agents

    @property
    def names(self) -> frozenset[str]:
        """The channels and patterns subscribed to."""
        return frozenset(self._names)

    def allowed(self, channel: str) -> bool:
        """True when this connection may see ``channel``."""
        return names.readable(channel, self._agents)

    def on_publication(self, pub: Publication, frame: str) -> None:
        stream = self._streams.get(pub.channel)
        if stream is None:  # first publication of a channel seen through a pattern
            stream = self._streams[pub.channel] = _Stream(pub.channel, pub.epoch)
            if self._syncing:
                stream.pending = []
        if stream.pending is not None:
            if len(stream.pending) >= self._max_pending:
                self._outbox.overflow()
                return
            stream.pending.append((pub, frame))
            return
        if pub.epoch != stream.epoch:
            stream.pending = [(pub, frame)]
            self._resyncs[pub.channel] = asyncio.create_task(self._resync(pub.channel))
            return
        if pub.seq <= stream.seq:
            return
        stream.seq = pub.seq
        self._outbox.put(frame, channel=pub.channel, seq=pub.seq, key=pub.key, state=stream.state)

    async def subscribe(
        self,
        requested: list[str],
        since: Mapping[str, int | SincePosition],
        announce: Announce,
    ) -> None:
        """Subscribe to validated names; ``announce`` is called before snapshots are queued."""
        self._node.groups.leave(self)
        self._syncing += 1
        plans: list[_Plan] = []
        try:
            for i, name in enumerate(requested):
                await self._node.add(self, name)
                self._names.add(name)
                if i % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)  # a long list never holds the loop for long
            concrete: dict[str, None] = {}
            for name in requested:
                for channel in await self._resolve(name):
                    concrete[channel] = None
            for channel in concrete:
                stream = self._streams.get(channel)
                if stream is None:
                    stream = self._streams[channel] = _Stream(channel, "")
                if stream.pending is None:
                    stream.pending = []
            for channel in concrete:
                plans.append(await self._plan(channel, since.get(channel)))
            announce(
                SyncResult(
                    recovered={p.channel: p.recovered for p in plans},
                    epochs={p.channel: p.epoch for p in plans},
                )
            )
            for plan in plans:
                self._apply(plan)
        finally:
            self._syncing -= 1
            for channel, stream in self._streams.items():
                if stream.pending is not None and channel not in self._resyncs:
                    self._release(stream)

    async def unsubscribe(self, requested: list[str]) -> None:
        """Drop names; channels no longer covered by any subscription are forgotten."""
        self._node.groups.leave(self)
        self._syncing += 1  # no group meanwhile
        try:
            for name in requested:
                await self._node.remove(self, name)
                self._names.discard(name)
        finally:
            self._syncing -= 1
        for channel in [c for c in self._streams if not self._covered(c)]:
            del self._streams[channel]
            task = self._resyncs.pop(channel, None)
            if task is not None:
                task.cancel()

    async def close(self) -> None:
        """Leave the node and stop resyncs (on disconnect)."""
        self._syncing += 1  # for good: no group again
        self._node.groups.leave(self)
        for task in self._resyncs.values():
            task.cancel()
        self._resyncs.clear()
        await self._node.remove_all(self)
        self._names.clear()
        self._streams.clear()

    def _covered(self, channel: str) -> bool:
        return any(name in self._names for name in names.subscriptions_for(channel))

    async def _resolve(self, name: str) -> list[str]:
        if not names.is_pattern(name):
            return [name]
        known = set(await self._broker.channels(name))
        known.update(c for c in self._streams if names.matches(name, c))
        return sorted(c for c in known if self.allowed(c))

    async def _plan(self, channel: str, since: int | SincePosition | None) -> _Plan:
        broker = self._broker
        if since is not None:
            seq, epoch = (since, None) if isinstance(since, int) else (since.seq, since.epoch)
            replay = await broker.history(channel, seq, epoch)
            if replay is not None:
                current = replay[-1].epoch if replay else (epoch or await broker.epoch(channel))
                frames = [(_event(p), p.seq) for p in replay]
                return _Plan(channel, True, current, frames, replay[-1].seq if replay else seq)
        if names.is_state(channel):
            values = sorted(await broker.last(channel), key=lambda p: p.seq)
            if values:
                frames = [(_snapshot(p), p.seq) for p in values]
                return _Plan(channel, False, values[-1].epoch, frames, values[-1].seq)
        return _Plan(channel, False, await broker.epoch(channel), [], 0)

    def _apply(self, plan: _Plan) -> None:
        for frame, seq in plan.frames:
            self._outbox.put(frame, channel=plan.channel, seq=seq)
        stream = self._streams[plan.channel]
        stream.seq = max(stream.seq, plan.seq) if stream.epoch == plan.epoch else plan.seq
        stream.epoch = plan.epoch
        self._release(stream)

    def _release(self, stream: _Stream) -> None:
        pending, stream.pending = stream.pending or [], None
        for pub, frame in pending:
            if pub.epoch == stream.epoch or not stream.epoch:
                stream.epoch = pub.epoch
                self.on_publication(pub, frame)

    async def _resync(self, channel: str) -> None:
        try:
            plan = await self._plan(channel, None)
            announce = Subscribed(
                channels=[channel], recovered={channel: False}, epochs={channel: plan.epoch}
            )
            self._outbox.put(encode(announce).decode())
            self._apply(plan)
        except Exception:
            log.exception("resync of %s failed; releasing its buffer as live events", channel)
            stream = self._streams.get(channel)
            if stream is not None and stream.pending:
                stream.epoch = stream.pending[0][0].epoch
                stream.seq = 0
                self._release(stream)
        finally:
            self._resyncs.pop(channel, None)


def _event(pub: Publication) -> str:
    return encode(Event(ch=pub.channel, seq=pub.seq, ts=pub.ts, data=pub.data)).decode()


def _snapshot(pub: Publication) -> str:
    return encode(
        Snapshot(ch=pub.channel, seq=pub.seq, ts=pub.ts, epoch=pub.epoch, data=pub.data)
    ).decode()
