"""The node's fan-out: who gets a publication, and what finding them costs."""

from __future__ import annotations

import pytest

from channels import names
from channels.broker import Publication
from channels.memory import MemoryBroker
from channels.node import Node

TICKS = "agent:agent_1:ticks"


class Recorder:
    def __init__(self, agents: frozenset[str] | None = None) -> None:
        self.agents = agents
        self.channels: list[str] = []

    def on_publication(self, pub: Publication, frame: str) -> None:
        self.channels.append(pub.channel)


async def test_patterns_deliver_only_what_the_subscriber_may_read() -> None:
    node = Node(MemoryBroker())
    limited, unlimited = Recorder(frozenset({"agent_1"})), Recorder()
    for sub in (limited, unlimited):
        await node.add(sub, "*")
        await node.add(sub, "agent:*:ticks")
    for channel in (TICKS, "agent:agent_2:ticks", "summary", "signals", "system"):
        await node.broker.publish(channel, {})
    assert limited.channels == [TICKS, "system"]
    assert unlimited.channels == [TICKS, "agent:agent_2:ticks", "summary", "signals", "system"]


async def test_publishing_after_churn_never_walks_every_pattern(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node = Node(MemoryBroker())
    crowd = Recorder()
    for i in range(2000):  # patterns that match nothing published
        await node.add(crowd, f"agent:other_{i}:*")
    reader = Recorder()
    await node.add(reader, "agent:*:ticks")
    churner = Recorder()
    calls = 0
    real = names.matches

    def counted(pattern: str, channel: str) -> bool:
        nonlocal calls
        calls += 1
        return real(pattern, channel)

    for i in range(50):
        await node.add(churner, f"agent:churn_{i}:*")  # every change used to reset the cache
        await node.remove(churner, f"agent:churn_{i}:*")
        monkeypatch.setattr(names, "matches", counted)
        await node.broker.publish(TICKS, {"i": i})
        monkeypatch.setattr(names, "matches", real)
    assert len(reader.channels) == 50
    assert calls == 0  # a publication looks up the eight names matching its channel


async def test_a_subscription_change_reaches_the_next_publication() -> None:
    node = Node(MemoryBroker())
    late, pattern = Recorder(), Recorder()
    await node.broker.publish(TICKS, {})  # cached with no subscriber
    await node.add(late, TICKS)
    await node.add(pattern, "agent:*:*")
    await node.broker.publish(TICKS, {})
    await node.remove(pattern, "agent:*:*")
    await node.broker.publish(TICKS, {})
    await node.remove(late, TICKS)
    await node.broker.publish(TICKS, {})
    assert (len(late.channels), len(pattern.channels)) == (2, 1)
