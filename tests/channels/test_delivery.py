"""Conflation only when behind, never-dropped events, slow consumers, batching."""

from __future__ import annotations

import asyncio
import json

import pytest

from channels.delivery import Outbox
from channels.feed import Feed
from channels.memory import MemoryBroker
from channels.node import Node
from tests.timing import units


def frames(outbox: Outbox) -> list[str]:
    return [i.frame for i in outbox.take(100_000) if i.frame is not None]


def test_a_client_that_keeps_up_sees_every_state_value() -> None:
    outbox = Outbox(soft_limit=4, hard_limit=8)
    seen: list[str] = []
    for seq in range(1, 21):
        outbox.put(f"v{seq}", channel="summary", seq=seq, state=True)
        seen += frames(outbox)
    assert seen == [f"v{seq}" for seq in range(1, 21)]


def test_state_conflates_per_channel_and_key_when_behind() -> None:
    outbox = Outbox(soft_limit=2, hard_limit=10)
    for seq in range(1, 31):
        key = "X" if seq % 2 else "E"
        outbox.put(f"{key}{seq}", channel="agent:a:ticks", seq=seq, key=key, state=True)
    assert frames(outbox) == ["X29", "E30"]
    assert outbox.conflated == 28


def test_conflated_values_stay_in_seq_order() -> None:
    outbox = Outbox(soft_limit=1, hard_limit=10)
    outbox.put("X1", channel="t", seq=1, key="X", state=True)
    outbox.put("E2", channel="t", seq=2, key="E", state=True)
    outbox.put("X3", channel="t", seq=3, key="X", state=True)
    assert frames(outbox) == ["E2", "X3"]


def test_events_are_never_dropped_below_the_hard_limit() -> None:
    outbox = Outbox(soft_limit=2, hard_limit=50)
    for seq in range(1, 51):
        outbox.put(f"e{seq}", channel="signals", seq=seq)
    assert frames(outbox) == [f"e{seq}" for seq in range(1, 51)]
    assert not outbox.overflowed


def test_past_the_hard_limit_the_outbox_overflows_once_and_stays_empty() -> None:
    calls: list[int] = []
    outbox = Outbox(soft_limit=2, hard_limit=5, on_overflow=lambda: calls.append(1))
    for seq in range(1, 20):
        outbox.put(f"e{seq}", channel="signals", seq=seq)
    assert outbox.overflowed
    assert calls == [1]
    assert len(outbox) == 0
    assert frames(outbox) == []


async def test_a_stalled_connection_does_not_hold_back_another() -> None:
    broker = MemoryBroker()
    node = Node(broker)
    stalled = Outbox(soft_limit=16, hard_limit=64)
    healthy = Outbox(soft_limit=16, hard_limit=64)
    await Feed(node, stalled).subscribe(["agent:a:ticks", "signals"], {}, lambda r: None)
    await Feed(node, healthy).subscribe(["agent:a:ticks", "signals"], {}, lambda r: None)
    got: list[int] = []
    peak = 0
    for i in range(1, 2001):
        await broker.publish("agent:a:ticks", {"bid": i}, key="X")
        if i % 20 == 0:
            await broker.publish("signals", {"n": i})
        peak = max(peak, len(stalled))
        got += [json.loads(f)["seq"] for f in frames(healthy) if '"ch":"agent:a:ticks"' in f]
    assert got == list(range(1, 2001)), "the healthy client sees every tick"
    assert peak <= 64, "the stalled client's queue stays bounded"
    assert stalled.overflowed, "events past the hard limit end the stalled client"


async def test_state_only_stall_conflates_without_overflow() -> None:
    broker = MemoryBroker()
    node = Node(broker)
    stalled = Outbox(soft_limit=8, hard_limit=64)
    await Feed(node, stalled).subscribe(["agent:a:ticks"], {}, lambda r: None)
    for i in range(1, 5001):
        await broker.publish("agent:a:ticks", {"bid": i}, key=("X", "E", "G")[i % 3])
    assert not stalled.overflowed
    assert len(stalled) <= 8 + 3
    seqs = [json.loads(f)["seq"] for f in frames(stalled)]
    assert seqs == sorted(seqs)
    assert seqs[-1] == 5000


async def test_batching_sends_a_lone_message_at_once() -> None:
    outbox = Outbox()
    sent: asyncio.Queue[str] = asyncio.Queue()
    writer = asyncio.create_task(outbox.run(sent.put, batch=True, flush_interval=units(1000)))
    outbox.put('{"n":1}')
    assert await asyncio.wait_for(sent.get(), units(50)) == '{"n":1}'
    writer.cancel()


async def test_batching_holds_a_message_only_after_two_frames_within_the_interval() -> None:
    outbox = Outbox()
    sent: asyncio.Queue[str] = asyncio.Queue()
    writer = asyncio.create_task(outbox.run(sent.put, batch=True, flush_interval=units(5)))
    for n in range(2):  # not under load: at once
        outbox.put(f'{{"n":{n}}}')
        assert await asyncio.wait_for(sent.get(), units(2)) == f'{{"n":{n}}}'
    outbox.put('{"n":2}')  # two frames within the interval: held until it has passed
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sent.get(), units(2))
    assert await asyncio.wait_for(sent.get(), units(10)) == '{"n":2}'
    writer.cancel()


async def test_batching_packs_what_queued_during_a_send_into_one_frame() -> None:
    outbox = Outbox(soft_limit=500, hard_limit=1000)
    sent: asyncio.Queue[str] = asyncio.Queue()
    gate = asyncio.Event()

    async def send(frame: str) -> None:
        await sent.put(frame)
        await gate.wait()

    writer = asyncio.create_task(outbox.run(send, batch=True, flush_interval=units(0.1)))
    outbox.put('{"n":0}')
    assert await asyncio.wait_for(sent.get(), units(20)) == '{"n":0}'
    for n in range(1, 101):  # queued while the first send is still in progress
        outbox.put(f'{{"n":{n}}}')
    gate.set()
    packed = await asyncio.wait_for(sent.get(), units(20))
    writer.cancel()
    assert packed.split("\n") == [f'{{"n":{n}}}' for n in range(1, 101)]


async def test_plain_mode_sends_one_message_per_frame() -> None:
    outbox = Outbox()
    sent: asyncio.Queue[str] = asyncio.Queue()
    writer = asyncio.create_task(outbox.run(sent.put))
    for n in range(5):
        outbox.put(f'{{"n":{n}}}')
    got = [await asyncio.wait_for(sent.get(), units(20)) for _ in range(5)]
    writer.cancel()
    assert got == [f'{{"n":{n}}}' for n in range(5)]


async def test_an_idle_writer_sends_heartbeats() -> None:
    outbox = Outbox()
    sent: asyncio.Queue[str] = asyncio.Queue()
    writer = asyncio.create_task(
        outbox.run(sent.put, heartbeat=units(0.5), heartbeat_frame=lambda: "hb")
    )
    assert await asyncio.wait_for(sent.get(), units(20)) == "hb"
    writer.cancel()
