"""Conflation only when behind, never-dropped events, slow consumers, batching."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from channels.delivery import Outbox
from channels.feed import Feed
from channels.lane import Lane
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


class FakeSink:
    """A direct sink that records every write; ``writable`` is set by the test."""

    def __init__(self) -> None:
        self.on_writable: Callable[[], None] | None = None
        self.writes: list[bytes] = []
        self.closed = False
        self.writable = True

    def write(self, data: bytes) -> bool:
        self.writes.append(data)
        return True

    def offer(self, data: bytes) -> bool:
        return self.writable and not self.closed and self.write(data)

    def messages(self) -> list[str]:
        """The text of every frame written (one-frame mode, payloads under 126 bytes)."""
        out: list[str] = []
        for data in self.writes:
            while data:
                size = data[1]
                out.append(data[2 : 2 + size].decode())
                data = data[2 + size :]
        return out


async def test_a_direct_outbox_writes_what_one_loop_iteration_queued_in_one_write() -> None:
    lane, sink, outbox = Lane(), FakeSink(), Outbox()
    outbox.attach(sink, lane)
    for n in range(3):
        outbox.put(f"m{n}")
    assert sink.writes == [], "nothing is written before the end of the iteration"
    await asyncio.sleep(0)
    assert sink.messages() == ["m0", "m1", "m2"]
    assert (len(sink.writes), lane.writes, lane.flushes) == (1, 1, 1)


async def test_direct_outboxes_with_the_same_messages_share_one_built_frame() -> None:
    lane = Lane()
    sinks = [FakeSink() for _ in range(3)]
    outboxes = [Outbox() for _ in sinks]
    for outbox, sink in zip(outboxes, sinks, strict=True):
        outbox.attach(sink, lane)
    for text in ["a", "b"]:
        for outbox in outboxes:
            outbox.put(text)
    await asyncio.sleep(0)
    assert lane.built == 1
    assert sinks[0].writes[0] is sinks[1].writes[0] is sinks[2].writes[0]


async def test_a_full_sink_queues_in_the_outbox_and_drains_in_order_when_writable() -> None:
    lane, sink, outbox = Lane(), FakeSink(), Outbox(soft_limit=4, hard_limit=100)
    outbox.attach(sink, lane)
    sink.writable = False
    for n in range(10):
        outbox.put(f"m{n}")
        await asyncio.sleep(0)
    assert sink.writes == []
    assert lane.spills > 0
    assert len(outbox) == 10
    sink.writable = True
    assert sink.on_writable is not None
    sink.on_writable()
    await asyncio.sleep(0)
    assert sink.messages() == [f"m{n}" for n in range(10)]
    assert len(outbox) == 0


async def test_a_burst_reaching_the_soft_limit_is_written_at_once() -> None:
    lane, sink, outbox = Lane(), FakeSink(), Outbox(soft_limit=4, hard_limit=100)
    outbox.attach(sink, lane)
    for n in range(6):
        outbox.put(f"m{n}")
    assert sink.messages() == ["m0", "m1", "m2", "m3"], "written at the soft limit"
    await asyncio.sleep(0)
    assert sink.messages() == [f"m{n}" for n in range(6)], "the rest at its turn"
    assert lane.writes == 2


async def test_a_batched_direct_outbox_under_load_waits_for_the_shared_timer() -> None:
    lane, sink, outbox = Lane(), FakeSink(), Outbox()
    outbox.attach(sink, lane, batch=True, flush_interval=units(2))
    outbox.put("a")
    outbox.put("b")
    await asyncio.sleep(0)
    assert sink.writes[-1].endswith(b"a\nb"), "not under load: at once, in one frame"
    outbox.put("c")  # the last frame carried two messages: under load
    await asyncio.sleep(0)
    assert len(sink.writes) == 1
    await asyncio.sleep(units(3))
    assert len(sink.writes) == 2 and sink.writes[1].endswith(b"c")


async def test_detach_writes_what_is_left_and_overflow_stops_direct_writes() -> None:
    lane, sink, outbox = Lane(), FakeSink(), Outbox(soft_limit=2, hard_limit=4)
    outbox.attach(sink, lane)
    outbox.put("last")
    outbox.detach()
    assert sink.messages() == ["last"]
    await asyncio.sleep(0)
    assert lane.writes == 0, "its scheduled turn found nothing to write"
    overflowing = Outbox(soft_limit=2, hard_limit=4)
    overflowing.attach(sink, lane)
    sink.writable = False
    for n in range(10):
        overflowing.put(f"e{n}")
        await asyncio.sleep(0)
    assert overflowing.overflowed
    assert len(overflowing) == 0
