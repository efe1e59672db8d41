"""In-sync subscribers share one group: join, leave on pause or subscription change, rejoin,
the same bytes object written to each member, and no gap or duplicate across it all."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from channels.delivery import Outbox
from channels.feed import Feed
from channels.memory import MemoryBroker
from channels.node import Node
from tests.channels.brokers import FlushableBroker
from tests.channels.test_delivery import FakeSink
from tests.timing import units

SIGNALS = "signals"  # events: never conflated, every seq must arrive once
ACCOUNT = "agent:a:account"  # state


class Client:
    """A feed writing directly to a fake sink through the node's lane, as a session does."""

    def __init__(self, node: Node, *, batch: bool = False, soft: int = 256) -> None:
        self.node = node
        self.sink = FakeSink()
        self.outbox = Outbox(soft_limit=soft, hard_limit=100_000)
        self.outbox.attach(self.sink, node.lane, batch=batch)
        self.feed = Feed(node, self.outbox, max_pending=100_000)

    async def subscribe(self, *channels: str) -> None:
        await self.feed.subscribe(list(channels), {}, lambda _: self.outbox.put('{"type":"ok"}'))

    async def unsubscribe(self, *channels: str) -> None:
        await self.feed.unsubscribe(list(channels))
        self.outbox.put('{"type":"ok"}')

    @property
    def grouped(self) -> bool:
        return self.feed in self.node.groups.of

    def pause(self) -> None:
        self.sink.writable = False

    def resume(self) -> None:
        self.sink.writable = True
        assert self.sink.on_writable is not None
        self.sink.on_writable()

    def messages(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for data in self.sink.writes:
            while data:
                size, head = data[1], 2
                if size == 126:
                    size, head = int.from_bytes(data[2:4], "big"), 4
                for line in data[head : head + size].decode().split("\n"):
                    out.append(json.loads(line))
                data = data[head + size :]
        return out

    def seqs(self, channel: str, kind: str = "event") -> list[int]:
        return [m["seq"] for m in self.messages() if m.get("ch") == channel and m["type"] == kind]


async def turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_in_sync_subscribers_join_one_group_and_get_the_same_bytes_object() -> None:
    node = Node(MemoryBroker())
    clients = [Client(node) for _ in range(3)]
    for c in clients:
        await c.subscribe(SIGNALS)
    await turns()
    assert all(c.grouped for c in clients) and len(node.groups) == 1
    writes = [len(c.sink.writes) for c in clients]
    await node.broker.publish(SIGNALS, {"n": 1})
    await node.broker.publish(SIGNALS, {"n": 2})
    await turns()
    new = [c.sink.writes[w:] for c, w in zip(clients, writes, strict=True)]
    assert [len(w) for w in new] == [1, 1, 1], "both messages in one write each"
    assert new[0][0] is new[1][0] is new[2][0], "the same bytes object to every member"
    assert all(c.seqs(SIGNALS) == [1, 2] for c in clients)


async def test_batched_and_one_frame_subscribers_are_different_groups() -> None:
    node = Node(MemoryBroker())
    plain, batched = Client(node), Client(node, batch=True)
    await plain.subscribe(SIGNALS)
    await batched.subscribe(SIGNALS)
    await turns()
    assert plain.grouped and batched.grouped
    assert node.groups.of[plain.feed] is not node.groups.of[batched.feed]


async def test_a_paused_member_leaves_with_what_it_lacks_and_rejoins_when_drained() -> None:
    node = Node(MemoryBroker())
    a, b = Client(node), Client(node)
    for c in (a, b):
        await c.subscribe(SIGNALS)
    await turns()
    b.pause()
    await node.broker.publish(SIGNALS, {"n": 1})
    await turns()
    assert a.grouped and not b.grouped, "the paused member left at the group's turn"
    assert len(b.outbox) == 1, "with a copy of the message it lacked"
    for n in range(2, 5):
        await node.broker.publish(SIGNALS, {"n": n})
    await turns()
    assert len(b.outbox) == 4, "then its own queue, as before groups"
    b.resume()
    await turns()
    assert b.seqs(SIGNALS) == [1, 2, 3, 4]
    assert b.grouped, "caught up: back in the group"
    before = (len(a.sink.writes), len(b.sink.writes))
    await node.broker.publish(SIGNALS, {"n": 5})
    await turns()
    assert a.sink.writes[before[0]] is b.sink.writes[before[1]]
    assert a.seqs(SIGNALS) == b.seqs(SIGNALS) == [1, 2, 3, 4, 5]


async def test_a_paused_member_conflates_state_and_overflows_by_its_own_rules() -> None:
    node = Node(MemoryBroker())
    a = Client(node)
    b = Client(node, soft=4)
    c = Client(node, soft=4)
    for client in (a, b, c):
        await client.subscribe(ACCOUNT)
    await turns()
    c.pause()
    for n in range(20):
        await node.broker.publish(ACCOUNT, {"equity": n}, key=None)
        await turns(1)
    assert not c.grouped and c.outbox.conflated > 0, "behind: state values conflate"
    c.resume()
    await turns()
    seqs = c.seqs(ACCOUNT)
    assert seqs == sorted(set(seqs)) and seqs[-1] == 20, "in order, latest value last"


async def test_a_subscription_change_leaves_the_group_with_what_is_pending() -> None:
    node = Node(MemoryBroker())
    a, b = Client(node), Client(node)
    for c in (a, b):
        await c.subscribe(SIGNALS)
    await turns()
    await node.broker.publish(SIGNALS, {"n": 1})  # pending in the group, not yet written
    await b.subscribe(ACCOUNT)
    assert not b.grouped or node.groups.of[b.feed] is not node.groups.of[a.feed]
    await node.broker.publish(SIGNALS, {"n": 2})
    await turns()
    assert a.seqs(SIGNALS) == b.seqs(SIGNALS) == [1, 2]
    assert b.grouped and node.groups.of[b.feed] is not node.groups.of[a.feed], (
        "caught up again: a group of its own subscriptions"
    )
    await b.unsubscribe(ACCOUNT)
    await turns()
    assert node.groups.of[b.feed] is node.groups.of[a.feed], "same subscriptions again"
    await node.broker.publish(SIGNALS, {"n": 3})
    await turns()
    assert a.seqs(SIGNALS) == b.seqs(SIGNALS) == [1, 2, 3]


async def test_a_new_epoch_dissolves_the_group_and_each_member_resyncs() -> None:
    broker = FlushableBroker()
    node = Node(broker)
    await broker.publish("summary", {"v": 1})
    clients = [Client(node) for _ in range(2)]
    for c in clients:
        await c.subscribe("summary")
    await turns()
    assert all(c.grouped for c in clients)
    broker.flush()
    await broker.publish("summary", {"v": 2})
    await turns(20)
    await broker.publish("summary", {"v": 3})
    await turns()
    epoch = await broker.epoch("summary")
    for c in clients:
        kinds = [(m["type"], m.get("seq")) for m in c.messages() if m["type"] != "ok"]
        assert kinds == [("snapshot", 1), ("subscribed", None), ("snapshot", 1), ("event", 2)]
        assert c.messages()[-2]["epoch"] == epoch


async def test_a_closed_feed_leaves_its_group_for_good() -> None:
    node = Node(MemoryBroker())
    a, b = Client(node), Client(node)
    for c in (a, b):
        await c.subscribe(SIGNALS)
    await turns()
    await b.feed.close()
    assert not b.grouped and len(node.groups.of[a.feed]) == 1
    b.outbox.put('{"type":"ok"}')
    await turns()
    assert not b.grouped


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["publish", "state", "pause", "resume", "sub", "unsub", "turn", "reply"]),
        st.integers(0, 2),
    ),
    max_size=60,
)


@settings(max_examples=100, deadline=None)
@given(ops=_OPS)
def test_no_gap_or_duplicate_across_leaving_and_rejoining(ops: list[tuple[str, int]]) -> None:
    async def scenario() -> None:
        node = Node(MemoryBroker())
        clients = [Client(node, soft=8), Client(node, soft=8), Client(node, soft=8, batch=True)]
        for c in clients:
            await c.subscribe(SIGNALS)
        await turns()
        sent = 0
        replies: list[int] = []  # per reply id: the last event published before it
        mine: list[list[int]] = [[] for _ in clients]
        for op, i in ops:
            c = clients[i]
            if op == "publish":
                sent += 1
                await node.broker.publish(SIGNALS, {"n": sent})
            elif op == "state":
                await node.broker.publish(ACCOUNT, {"i": i}, key=str(i))
            elif op == "pause":
                c.pause()
            elif op == "resume" and not c.sink.writable:
                c.resume()
            elif op == "sub":
                await c.subscribe(ACCOUNT)
            elif op == "unsub":
                await c.unsubscribe(ACCOUNT)
            elif op == "reply":  # a message of its own (a command result), put in order
                mine[i].append(len(replies))
                c.outbox.put(json.dumps({"type": "result", "id": len(replies)}))
                replies.append(sent)
            else:
                await turns(1)
        for c in clients:
            if not c.sink.writable:
                c.resume()
        await asyncio.sleep(units(0.3))  # past the batched client's flush interval
        await turns()
        for c, expected in zip(clients, mine, strict=True):
            assert c.seqs(SIGNALS) == list(range(1, sent + 1)), "every event once, in order"
            last, got = 0, []
            for m in c.messages():
                if m.get("ch") == SIGNALS and m["type"] == "event":
                    last = m["seq"]
                elif m["type"] == "result":
                    assert last >= replies[m["id"]], "a reply never overtakes an earlier event"
                    got.append(m["id"])
            assert got == expected, "its own messages once each, in order"
            newest = 0
            for m in c.messages():
                if m.get("ch") == ACCOUNT:
                    if m["type"] == "event":
                        assert m["seq"] > newest, "no state event twice or behind a snapshot"
                    newest = max(newest, m["seq"])

    asyncio.run(scenario())


async def test_pattern_subscribers_share_a_group_across_new_channels() -> None:
    node = Node(MemoryBroker())
    a, b = Client(node), Client(node)
    for c in (a, b):
        await c.subscribe("agent:*:account")
    await turns()
    await node.broker.publish("agent:x:account", {"v": 1})
    await turns()
    assert a.grouped and b.grouped and node.groups.of[a.feed] is node.groups.of[b.feed]
    late = Client(node)
    await late.subscribe("agent:*:account")  # a snapshot of agent:x, then the group
    await node.broker.publish("agent:y:account", {"v": 2})
    await node.broker.publish("agent:x:account", {"v": 3})
    await turns()
    assert late.grouped
    for c in (a, b):
        assert [(m["ch"], m["seq"]) for m in c.messages() if m.get("type") == "event"] == [
            ("agent:x:account", 1),
            ("agent:y:account", 1),
            ("agent:x:account", 2),
        ]
    assert [(m["type"], m["ch"], m["seq"]) for m in late.messages() if "ch" in m] == [
        ("snapshot", "agent:x:account", 1),
        ("event", "agent:y:account", 1),
        ("event", "agent:x:account", 2),
    ]


async def test_a_members_own_message_after_a_pending_event_leaves_in_the_same_frame() -> None:
    node = Node(MemoryBroker())
    a, b = Client(node, batch=True), Client(node, batch=True)
    for c in (a, b):
        await c.subscribe(SIGNALS)
    await turns()
    writes = (len(a.sink.writes), len(b.sink.writes))
    await node.broker.publish(SIGNALS, {"n": 1})  # pending in the group
    b.outbox.put('{"type":"result","id":1}')  # b's own reply, put after it
    await turns()
    assert len(a.sink.writes) - writes[0] == 1 and len(b.sink.writes) - writes[1] == 1
    last = b.messages()[-2:]
    assert [m["type"] for m in last] == ["event", "result"], "in put order, one frame"
    assert b.grouped, "still in its group"
    b.outbox.put('{"type":"result","id":2}')  # nothing pending in the group: its own turn
    await turns()
    assert b.messages()[-1] == {"type": "result", "id": 2}


async def test_a_paused_member_keeps_its_own_message_behind_the_copy() -> None:
    node = Node(MemoryBroker())
    a, b = Client(node), Client(node)
    for c in (a, b):
        await c.subscribe(SIGNALS)
    await turns()
    await node.broker.publish(SIGNALS, {"n": 1})
    b.outbox.put('{"type":"result","id":1}')
    b.pause()
    await turns()
    assert not b.grouped
    b.resume()
    await turns()
    assert [m["type"] for m in b.messages()[-2:]] == ["event", "result"]
