"""CPU per message per connection of the delivery path alone: ``python -m bench.delivery_cost``.

In one process, no sockets: a memory broker publishes ticks, the node hands each to N
subscribers' feeds, their outboxes (attached directly) queue them, and the node's lane
writes every connection's pending frames to a sink that only counts bytes. The figure is
CPU time (``time.process_time``) per message per connection, the best and the median of
``--reps`` runs per mode. Unlike the socket sweep it hardly moves with other jobs on a
shared machine, so it is the number to compare across a change to ``channels/`` (run it
on both commits, alternately). Options: ``--n`` (subscribers), ``--ticks``, ``--reps``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

import uvloop

from channels.delivery import Outbox
from channels.feed import Feed
from channels.memory import MemoryBroker
from channels.node import Node

__all__ = ["main", "measure"]

_CHANNEL = "agent:agent_1:ticks"
_TICK = b'{"symbol":"EURUSD","bid":1.08123,"ask":1.08125,"time":1700000000000}'
_MODES = {"one-frame": (False, 2), "batch": (True, 5)}  # (batched, ticks per loop iteration)


class _CountingSink:
    """A direct sink that is always writable and only counts what it is given."""

    def __init__(self) -> None:
        self.on_writable: Callable[[], None] | None = None
        self.closed = False
        self.writable = True
        self.written = 0

    def write(self, data: bytes) -> bool:
        self.written += len(data)
        return True

    def offer(self, data: bytes) -> bool:
        return self.write(data)


async def measure(n: int, ticks: int, mode: str) -> float:
    """Nanoseconds of CPU per message per connection for ``ticks`` ticks to ``n`` subscribers."""
    batch, burst = _MODES[mode]
    broker = MemoryBroker()
    node = Node(broker)
    sinks = [_CountingSink() for _ in range(n)]
    for sink in sinks:
        outbox = Outbox()
        outbox.attach(sink, node.lane, batch=batch, flush_interval=0.002)
        await Feed(node, outbox).subscribe([_CHANNEL], {}, lambda result: None)
    await asyncio.sleep(0.01)
    started = time.process_time()
    for _ in range(0, ticks, burst):
        for _ in range(burst):
            await broker.publish(_CHANNEL, _TICK, key="EURUSD")
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)  # the last flush (batched: the shared timer)
    cpu = time.process_time() - started
    if not all(sink.written for sink in sinks):
        raise RuntimeError("a subscriber got nothing: the delivery path is broken")
    return cpu / (ticks * n) * 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery_cost", description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--ticks", type=int, default=500)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    for mode in _MODES:
        runs = [uvloop.run(measure(args.n, args.ticks, mode)) for _ in range(args.reps)]
        print(
            f"{mode:9} N={args.n}: best {min(runs):.0f} ns, median "
            f"{statistics.median(runs):.0f} ns per message per connection ({args.reps} runs)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
