"""The local fan-out: which connections of this process want which channels.

The :class:`Node` registers itself as its broker's handler. For each publication it
finds the matching subscribers: channels and patterns are kept in one dictionary, and a
channel is matched by at most eight names (:func:`~channels.names.subscriptions_for`), so
the cost is that of the matching names, never of every pattern held. The result is cached
per channel (and each cached channel filed under its eight names), so a subscription change
drops only the cached channels it matches, found by one lookup. It
encodes the ``event`` frame once and hands that same ``str`` to every subscriber
without awaiting. It subscribes upstream for the first local subscriber of a name
and unsubscribes after the last, rolling back on failure. Its :class:`~channels.lane.Lane`
is the one shared flush of every direct-writing connection of this node, and its
:class:`~channels.group.Groups` the in-sync subscribers that share one pending list: a
subscriber in a group is reached through its group (one call per group, not per member).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from channels import names
from channels.broker import Broker, Publication
from channels.group import Groups, Member
from channels.lane import Lane
from channels.protocol import Event, encode

__all__ = ["YIELD_EVERY", "Node", "Subscriber"]

YIELD_EVERY = 256  # subscriptions changed in a row before letting other tasks run

log = logging.getLogger(__name__)


class Subscriber(Protocol):
    """A local consumer of publications (one per connection)."""

    @property
    def agents(self) -> frozenset[str] | None:
        """Agents whose channels it may receive (None: all)."""

    def on_publication(self, pub: Publication, frame: str) -> None:
        """Take one publication and its encoded ``event`` frame; must not block."""


class Node:
    """Fan-out of one broker's publications to this process's subscribers."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._members: dict[str, set[Subscriber]] = {}  # channel or pattern -> subscribers
        self._by_subscriber: dict[Subscriber, set[str]] = {}
        self._cache: dict[str, tuple[Subscriber, ...]] = {}  # channel -> its subscribers
        self._cached_by_name: dict[str, set[str]] = {}  # name -> cached channels it matches
        self._upstream = asyncio.Lock()
        self.lane = Lane()
        self.groups = Groups(self.lane, self._regroup)
        self.published = 0
        broker.set_handler(self._on_publication)

    @property
    def subscribers(self) -> int:
        """Number of subscribers with at least one subscription."""
        return len(self._by_subscriber)

    async def add(self, subscriber: Subscriber, name: str) -> None:
        """Subscribe ``subscriber`` to a channel or pattern (idempotent)."""
        names.validate(name)
        async with self._upstream:
            members = self._members.get(name)
            first = members is None
            if members is None:
                members = self._members[name] = set()
            members.add(subscriber)
            self._by_subscriber.setdefault(subscriber, set()).add(name)
            self._forget_cached(name)
            if first:
                try:
                    await self.broker.subscribe(name)
                except BaseException:
                    self._forget(subscriber, name)
                    raise

    async def remove(self, subscriber: Subscriber, name: str) -> None:
        """Unsubscribe ``subscriber`` from a channel or pattern (no-op when not subscribed)."""
        async with self._upstream:
            if self._forget(subscriber, name):
                await self.broker.unsubscribe(name)

    async def remove_all(self, subscriber: Subscriber) -> None:
        """Drop every subscription of ``subscriber`` (on disconnect)."""
        for i, name in enumerate(list(self._by_subscriber.get(subscriber, ()))):
            await self.remove(subscriber, name)
            if i % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)  # many connections leaving at once never stall the loop

    def _forget(self, subscriber: Subscriber, name: str) -> bool:
        """Remove locally; True when that was the name's last subscriber."""
        members = self._members.get(name)
        if members is None or subscriber not in members:
            return False
        members.discard(subscriber)
        mine = self._by_subscriber.get(subscriber)
        if mine is not None:
            mine.discard(name)
            if not mine:
                del self._by_subscriber[subscriber]
        self._forget_cached(name)
        if members:
            return False
        del self._members[name]
        return True

    def _forget_cached(self, name: str) -> None:
        """Drop the cached subscribers of the channels ``name`` matches (it changed)."""
        for channel in self._cached_by_name.pop(name, ()):
            self._cache.pop(channel, None)

    def _regroup(self, member: Member) -> None:
        """``member`` joined or left a group: its channels are routed afresh."""
        for name in self._by_subscriber.get(member, ()):
            self._forget_cached(name)

    def _matching(self, channel: str) -> tuple[Subscriber, ...]:
        found: set[Subscriber] = set()
        for name in names.subscriptions_for(channel):
            members = self._members.get(name)
            if members:
                found |= members
        group_of = self.groups.of
        targets: dict[Subscriber, None] = {}
        for s in found:
            if names.readable(channel, s.agents):
                targets[group_of.get(s, s)] = None
        return tuple(targets)

    def _on_publication(self, pub: Publication) -> None:
        self.published += 1
        targets = self._cache.get(pub.channel)
        if targets is None:
            targets = self._cache[pub.channel] = self._matching(pub.channel)
            for name in names.subscriptions_for(pub.channel):
                self._cached_by_name.setdefault(name, set()).add(pub.channel)
        if not targets:
            return
        frame = encode(Event(ch=pub.channel, seq=pub.seq, ts=pub.ts, data=pub.data)).decode()
        for subscriber in targets:
            try:
                subscriber.on_publication(pub, frame)
            except Exception:
                log.exception("subscriber %r failed on %s seq %d", subscriber, pub.channel, pub.seq)
