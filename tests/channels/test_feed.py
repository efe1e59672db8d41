"""Snapshot-then-events ordering, recovery with since, and epoch changes, per connection."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from channels.delivery import Outbox
from channels.feed import Feed, SyncResult
from channels.memory import MemoryBroker
from channels.node import Node
from channels.protocol import SincePosition
from tests.channels.brokers import FlushableBroker, YieldingBroker

TICKS = "agent:agent_1:ticks"


def drain(outbox: Outbox) -> list[dict[str, Any]]:
    return [json.loads(item.frame) for item in outbox.take(10_000) if item.frame is not None]


def make_feed(node: Node, agents: frozenset[str] | None = None) -> tuple[Feed, Outbox]:
    outbox = Outbox(soft_limit=5_000, hard_limit=10_000)
    return Feed(node, outbox, agents=agents), outbox


async def subscribe(feed: Feed, channels: list[str], since: Any = None) -> SyncResult:
    results: list[SyncResult] = []
    await feed.subscribe(channels, since or {}, results.append)
    return results[0]


def assert_snapshot_then_gap_free(messages: list[dict[str, Any]], channel: str, last: int) -> None:
    mine = [m for m in messages if m.get("ch") == channel]
    snaps = [m for m in mine if m["type"] == "snapshot"]
    events = [m for m in mine if m["type"] == "event"]
    assert mine[: len(snaps)] == snaps, "snapshots come before events"
    start = max((s["seq"] for s in snaps), default=0)
    assert [e["seq"] for e in events] == list(range(start + 1, last + 1))


@settings(max_examples=40, deadline=None)
@given(
    before=st.integers(0, 20),
    during=st.integers(0, 40),
    symbols=st.lists(st.sampled_from(["XAUUSD", "EURUSD", "GBPUSD"]), min_size=60, max_size=60),
    yields=st.integers(0, 5),
)
def test_snapshot_then_events_without_gap_under_concurrent_publishing(
    before: int, during: int, symbols: list[str], yields: int
) -> None:
    async def scenario() -> None:
        broker = YieldingBroker(MemoryBroker(), yields=yields)
        node = Node(broker)
        feed, outbox = make_feed(node)
        for symbol in symbols[:before]:
            await broker.publish(TICKS, {"symbol": symbol}, key=symbol)

        async def publisher() -> None:
            for symbol in symbols[before : before + during]:
                await broker.publish(TICKS, {"symbol": symbol}, key=symbol)
                await asyncio.sleep(0)

        task = asyncio.create_task(publisher())
        await subscribe(feed, [TICKS])
        await task
        messages = drain(outbox)
        assert_snapshot_then_gap_free(messages, TICKS, before + during)
        snapshot_keys = [m["data"]["symbol"] for m in messages if m["type"] == "snapshot"]
        assert len(snapshot_keys) == len(set(snapshot_keys)), "one snapshot per symbol"

    asyncio.run(scenario())


async def test_subscribed_is_announced_before_snapshots() -> None:
    node = Node(MemoryBroker())
    feed, outbox = make_feed(node)
    await node.broker.publish("summary", {"total": 1})
    await feed.subscribe(["summary"], {}, lambda r: outbox.put('{"type":"subscribed"}'))
    assert [m["type"] for m in drain(outbox)] == ["subscribed", "snapshot"]


async def test_since_within_history_replays_events() -> None:
    broker = MemoryBroker()
    node = Node(broker)
    for i in range(5):
        await broker.publish("signals", {"i": i})
    feed, outbox = make_feed(node)
    result = await subscribe(feed, ["signals"], {"signals": 2})
    await broker.publish("signals", {"i": 5})
    assert result.recovered == {"signals": True}
    assert result.epochs == {"signals": await broker.epoch("signals")}
    assert [(m["type"], m["seq"]) for m in drain(outbox)] == [("event", s) for s in (3, 4, 5, 6)]


async def test_since_beyond_history_sends_a_snapshot_instead() -> None:
    broker = MemoryBroker(history_size=3)
    node = Node(broker)
    for i in range(10):
        await broker.publish("agent:a:account", {"equity": i})
    feed, outbox = make_feed(node)
    result = await subscribe(feed, ["agent:a:account"], {"agent:a:account": 2})
    assert result.recovered == {"agent:a:account": False}
    assert [(m["type"], m["seq"]) for m in drain(outbox)] == [("snapshot", 10)]


async def test_since_with_another_epoch_is_not_recovered() -> None:
    broker = MemoryBroker()
    node = Node(broker)
    await broker.publish("agent:a:account", {"equity": 1})
    feed, outbox = make_feed(node)
    since = {"agent:a:account": SincePosition(seq=0, epoch="stale")}
    result = await subscribe(feed, ["agent:a:account"], since)
    assert result.recovered == {"agent:a:account": False}
    snapshot = drain(outbox)[0]
    assert snapshot["type"] == "snapshot"
    assert snapshot["epoch"] == await broker.epoch("agent:a:account")


async def test_wildcard_snapshots_every_known_channel_and_sees_new_ones() -> None:
    broker = MemoryBroker()
    node = Node(broker)
    await broker.publish("agent:a:account", {"equity": 1})
    await broker.publish("agent:b:account", {"equity": 2})
    feed, outbox = make_feed(node)
    result = await subscribe(feed, ["agent:*:account"])
    await broker.publish("agent:c:account", {"equity": 3})
    await broker.publish("agent:c:ticks", {"bid": 3}, key="X")
    assert sorted(result.epochs) == ["agent:a:account", "agent:b:account"]
    assert [(m["type"], m["ch"]) for m in drain(outbox)] == [
        ("snapshot", "agent:a:account"),
        ("snapshot", "agent:b:account"),
        ("event", "agent:c:account"),
    ]


async def test_agent_scope_limits_what_a_wildcard_delivers() -> None:
    broker = MemoryBroker()
    node = Node(broker)
    await broker.publish("agent:a:account", {"equity": 1})
    await broker.publish("agent:b:account", {"equity": 2})
    feed, outbox = make_feed(node, agents=frozenset({"a"}))
    await subscribe(feed, ["agent:*:account"])
    await broker.publish("agent:b:account", {"equity": 3})
    await broker.publish("agent:a:account", {"equity": 4})
    assert [(m["type"], m["ch"]) for m in drain(outbox)] == [
        ("snapshot", "agent:a:account"),
        ("event", "agent:a:account"),
    ]


async def test_unsubscribe_stops_delivery() -> None:
    broker = MemoryBroker()
    node = Node(broker)
    feed, outbox = make_feed(node)
    await subscribe(feed, ["system"])
    await feed.unsubscribe(["system"])
    await broker.publish("system", {"event": "stop"})
    assert drain(outbox) == []
    assert node.subscribers == 0


async def test_a_new_epoch_under_a_live_subscription_sends_a_fresh_snapshot() -> None:
    broker = FlushableBroker()
    node = Node(broker)
    await broker.publish("summary", {"v": 1})
    feed, outbox = make_feed(node)
    await subscribe(feed, ["summary"])
    old_epoch = await broker.epoch("summary")
    broker.flush()
    await broker.publish("summary", {"v": 2})
    for _ in range(20):
        await asyncio.sleep(0)
    await broker.publish("summary", {"v": 3})
    messages = drain(outbox)
    new_epoch = await broker.epoch("summary")
    assert new_epoch != old_epoch
    assert [(m["type"], m.get("seq")) for m in messages] == [
        ("snapshot", 1),
        ("subscribed", None),
        ("snapshot", 1),
        ("event", 2),
    ]
    assert messages[1]["epochs"] == {"summary": new_epoch}
    assert "id" not in messages[1]
    assert messages[2]["epoch"] == new_epoch
    assert messages[2]["data"] == {"v": 2}
