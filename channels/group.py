"""Groups of in-sync subscribers: one pending list, one frame, the same bytes to each member.

Most connections of a channel are in the same state: caught up (nothing queued), the same
subscriptions, the same delivery mode. The node hands a publication to their
:class:`Group` once instead of to each :class:`~channels.feed.Feed`; the group makes the
epoch and seq check each feed would have made, appends the frame to one pending list and
asks the lane for one turn. On that turn it builds the frame bytes once
(:meth:`~channels.lane.Lane.frames`: one frame per message, or one coalesced frame when
batched, with the outbox's batching rule) and writes that same ``bytes`` object to every
member's sink. The per-message cost no longer grows with the number of members; only the
write per member at each turn does.

A member **leaves** (:meth:`Groups.leave`):

- when its sink is paused (``pause_writing``) at the group's turn: the messages of that
  turn go into its own outbox queue;
- before its subscriptions change (the feed leaves, then subscribes or unsubscribes);
- when its session ends;
- when a publication brings a new epoch: the group dissolves, and each member gets that
  publication on its own and resyncs as a lone feed would.

On leaving, the member gets a copy of what the group has pending for it and adopts the
group's epoch and seq of every channel, so from then on it is exactly a feed that received
everything the group did: its own queue, conflation and ``slow_consumer`` rules apply.

A feed asks to **join** when its outbox has caught up (written with a writable sink, or a
backlog drained) and it is not syncing. It is admitted only when nothing it has is ahead of
the group: for each of its channels the group knows the same epoch at a seq at least the
feed's (a feed whose snapshot was read before the group saw the publication waits for its
next caught-up moment), or the feed has seen no message of that channel. What the group has
pending at that moment the feed already has (received itself, or covered by its snapshot),
so it is skipped for that member.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Protocol

from channels import names
from channels.broker import Publication
from channels.delivery import Outbox, Pacing, Sink
from channels.lane import Flushed, Lane

__all__ = ["Group", "Groups", "Member", "Position"]


class Position(Protocol):
    """Where a subscriber is in one channel."""

    epoch: str
    seq: int
    state: bool


class Member(Protocol):
    """What a group needs from a subscriber (a :class:`~channels.feed.Feed`)."""

    @property
    def agents(self) -> frozenset[str] | None: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def positions(self) -> Mapping[str, Position]: ...

    def group_key(self) -> Hashable | None:
        """What members of one group share, or None while it may not join (syncing)."""

    def adopt(self, channel: str, epoch: str, seq: int) -> None:
        """Take the group's position in ``channel`` (on leaving)."""

    def on_publication(self, pub: Publication, frame: str) -> None: ...


class _Position:
    __slots__ = ("epoch", "seq", "state")

    def __init__(self, epoch: str, seq: int, state: bool) -> None:
        self.epoch = epoch
        self.seq = seq
        self.state = state


class Group(Pacing):
    """In-sync members with the same subscriptions and mode: the node's subscriber for all."""

    def __init__(
        self,
        key: Hashable,
        groups: Groups,
        lane: Lane,
        *,
        agents: frozenset[str] | None,
        batch: bool,
        flush_interval: float,
        soft_limit: int,
    ) -> None:
        super().__init__(flush_interval)
        self.key = key
        self.agents = agents
        self._groups = groups
        self._lane = lane
        self._batch = batch
        self._soft = soft_limit
        self._sinks: dict[Member, Sink] = {}  # members sent the whole pending list
        self._late: dict[Member, tuple[Sink, int]] = {}  # joined mid-turn: from that index
        self._positions: dict[str, _Position] = {}
        self._texts: list[str] = []
        self._pubs: list[Publication] = []
        # members' own pending messages: per message, how many of ours were pending at its put
        self._carried: dict[Outbox, list[int]] = {}
        self._scheduled = False

    def __len__(self) -> int:
        return len(self._sinks) + len(self._late)

    @property
    def members(self) -> list[Member]:
        return [*self._sinks, *self._late]

    # -- joining and leaving (through Groups) -------------------------------------------------

    def admit(self, member: Member) -> bool:
        """Add ``member`` if nothing it has is ahead of this group (see the module doc)."""
        sink = member.outbox.sink
        if sink is None:
            return False
        mine = self._positions
        if not mine and not self:
            for channel, p in member.positions.items():
                mine[channel] = _Position(p.epoch, p.seq, p.state)
        else:
            adopted: list[tuple[str, Position]] = []
            for channel, p in member.positions.items():
                ours = mine.get(channel)
                if ours is None:
                    if p.seq:
                        return False
                    adopted.append((channel, p))  # nothing seen yet: its epoch is the one
                elif ours.epoch != p.epoch or ours.seq < p.seq:
                    return False
            for channel, p in adopted:
                mine[channel] = _Position(p.epoch, 0, p.state)
        if self._texts:
            self._late[member] = (sink, len(self._texts))
        else:
            self._sinks[member] = sink
        member.outbox.group = self
        return True

    def release(self, member: Member) -> None:
        """Take ``member`` out with a copy of what it lacks and the group's positions."""
        if member in self._sinks:
            del self._sinks[member]
            start = 0
        else:
            start = self._late.pop(member)[1]
        self._hand_over(member, self._texts[start:], self._pubs[start:], start)

    def carry(self, outbox: Outbox) -> None:
        """See :meth:`channels.delivery.Carrier.carry` (called once the message is pending)."""
        marks = self._carried.get(outbox)
        if marks is None:  # (a member joins with nothing pending: this is its first)
            marks = self._carried[outbox] = [0] * (len(outbox.pending) - 1)
        marks.append(len(self._texts))
        if not self._scheduled:
            self._schedule()

    def _merged(
        self, texts: list[str], pubs: list[Publication], start: int, outbox: Outbox
    ) -> tuple[list[str], list[Publication | None]]:
        """Ours from index ``start`` with the member's own (taken from its outbox), in the
        order they were put; ``None`` marks the member's own."""
        marks = self._carried.pop(outbox, None)
        if marks is None:
            return texts, list(pubs)
        own = outbox.take_pending()
        out_texts: list[str] = []
        out_pubs: list[Publication | None] = []
        j = 0
        for i, (text, pub) in enumerate(zip(texts, pubs, strict=True), start):
            while j < len(own) and marks[j] <= i:
                out_texts.append(own[j])
                out_pubs.append(None)
                j += 1
            out_texts.append(text)
            out_pubs.append(pub)
        out_texts += own[j:]
        out_pubs += [None] * (len(own) - j)
        return out_texts, out_pubs

    def _hand_over(
        self, member: Member, texts: list[str], pubs: list[Publication], start: int
    ) -> None:
        outbox = member.outbox
        outbox.group = None
        merged, origins = self._merged(texts, pubs, start, outbox)
        sink = outbox.sink
        # paused: straight into its queue (conflating); else behind what it has pending
        put = outbox.enqueue if sink is not None and not sink.writable else outbox.put
        positions = self._positions
        for text, pub in zip(merged, origins, strict=True):
            if pub is None:
                put(text)
            else:
                put(
                    text,
                    channel=pub.channel,
                    seq=pub.seq,
                    key=pub.key,
                    state=positions[pub.channel].state,
                )
        for channel, p in positions.items():
            member.adopt(channel, p.epoch, p.seq)

    def _with_own(
        self, sink: Sink, texts: list[str], pubs: list[Publication], start: int, outbox: Outbox
    ) -> bool:
        """Ours from ``start`` and the member's own, in put order, in one write (one frame
        if batched); False (nothing taken) when the sink is paused."""
        if not sink.writable:
            return False
        merged, _ = self._merged(texts[start:], pubs[start:], start, outbox)
        return sink.offer(self._lane.frames(merged, self._batch, shared=False))

    # -- the node's subscriber -----------------------------------------------------------------

    def on_publication(self, pub: Publication, frame: str) -> None:
        position = self._positions.get(pub.channel)
        if position is None:  # first publication of a channel seen through a pattern
            position = self._positions[pub.channel] = _Position(
                pub.epoch, 0, names.is_state(pub.channel)
            )
        elif pub.epoch != position.epoch:
            self._dissolve(pub, frame)
            return
        if pub.seq <= position.seq:
            return
        position.seq = pub.seq
        texts = self._texts
        texts.append(frame)
        self._pubs.append(pub)
        if not self._scheduled:
            self._schedule()
        elif len(texts) >= self._soft:  # a burst: write now
            self._lane.flush_now(self)
            self._scheduled = True  # the turn asked for is still to come

    def _dissolve(self, pub: Publication, frame: str) -> None:
        """A new epoch: every member leaves and resyncs on its own, as a lone feed would."""
        members = self.members
        for member in members:
            self._groups.leave(member)
        for member in members:
            member.on_publication(pub, frame)

    # -- the lane's flushable ------------------------------------------------------------------

    def _schedule(self) -> None:
        self._scheduled = True
        lane = self._lane
        if self._batch:
            due = self.batch_due()
            if due > lane.now():
                lane.at(self, due)
                return
        lane.soon(self)

    def flush(self, now: float) -> Flushed:
        """One frame (or run of frames) built once, the same bytes written to every member."""
        self._scheduled = False
        texts, pubs = self._texts, self._pubs
        self._texts, self._pubs = [], []
        carried = self._carried
        if not (texts or carried) or not self:  # nothing to write, or nobody to write to
            return "idle"
        data = self._lane.frames(texts, self._batch) if texts else b""
        paused: list[tuple[Member, int]] = []
        written = 0
        if not carried:  # the common case: the same bytes to every member
            for member, sink in self._sinks.items():
                if sink.offer(data):
                    written += 1
                else:
                    paused.append((member, 0))
        else:
            for member, sink in self._sinks.items():
                if member.outbox in carried:
                    done = self._with_own(sink, texts, pubs, 0, member.outbox)
                elif not texts:
                    continue
                else:
                    done = sink.offer(data)
                if done:
                    written += 1
                else:
                    paused.append((member, 0))
        if self._late:
            late, self._late = self._late, {}
            for member, (sink, start) in late.items():
                self._sinks[member] = sink
                if carried and member.outbox in carried:
                    done = self._with_own(sink, texts, pubs, start, member.outbox)
                elif start >= len(texts):
                    continue
                else:
                    done = sink.offer(self._lane.frames(texts[start:], self._batch, shared=False))
                if done:
                    written += 1
                else:
                    paused.append((member, start))
        for member, start in paused:
            del self._sinks[member]
            self._groups.left(member, self)
            self._hand_over(member, texts[start:], pubs[start:], start)
        if texts:
            self._sent(now, len(texts))
        self._groups.writes += written
        self._lane.spills += len(paused)
        return "written" if written else "spilled" if paused else "idle"


class Groups:
    """The node's groups, keyed by what their members share (see :meth:`Member.group_key`).

    ``on_change(member)`` is called whenever a member joins or leaves, so the node routes
    that subscriber's publications to the group or back to it.
    """

    def __init__(self, lane: Lane, on_change: Callable[[Member], None]) -> None:
        self._lane = lane
        self._on_change = on_change
        self._groups: dict[Hashable, Group] = {}
        self.of: dict[object, Group] = {}  # member -> its group
        self.joins = 0
        self.leaves = 0
        self.writes = 0  # shared frames written to members

    def __len__(self) -> int:
        return len(self._groups)

    def join(self, member: Member) -> bool:
        """Put ``member`` into the group of its peers (made if needed); False if refused."""
        if member in self.of:
            return True
        key = member.group_key()
        if key is None or not member.outbox.idle:
            return False
        group = self._groups.get(key)
        if group is None:
            batch, flush_interval, soft, _ = member.outbox.mode
            group = Group(
                key,
                self,
                self._lane,
                agents=member.agents,
                batch=batch,
                flush_interval=flush_interval,
                soft_limit=soft,
            )
            if not group.admit(member):
                return False
            self._groups[key] = group
        elif not group.admit(member):
            return False
        self.of[member] = group
        self.joins += 1
        self._on_change(member)
        return True

    def leave(self, member: Member) -> None:
        """Take ``member`` out of its group (no-op when it is in none)."""
        group = self.of.get(member)
        if group is None:
            return
        group.release(member)
        self.left(member, group)

    def left(self, member: Member, group: Group) -> None:
        """Bookkeeping of a member that ``group`` has let go."""
        del self.of[member]
        self.leaves += 1
        if not group and self._groups.get(group.key) is group:
            del self._groups[group.key]
        self._on_change(member)
