"""The bench rig: scale presets, the pinned server/load processes, and shared helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec

from bench._load import Load
from bench._proc import Child, cores
from bench.configs import write

__all__ = ["FULL", "QUICK", "SMOKE", "Rig", "Scale", "wait_until"]


class Scale(msgspec.Struct, frozen=True, kw_only=True):
    """How big and how long each benchmark runs."""

    name: str
    subscribers: tuple[int, ...]  # fan-out N values
    window: float  # seconds of injection per measured rate
    drain: float  # at most this long to let a backlog arrive after a window
    warmup: float
    one_frame: tuple[int, ...]  # offered deliveries (msg/s) to sweep, one frame per message
    batched: tuple[int, ...]  # same, coalesced frames
    light_rate: float  # ticks/s for the light-load point (at the smallest N)
    light_window: float
    settle: float  # seconds to let a server settle before measuring memory or polling
    slow_n: int
    slow_fast: tuple[int, float]  # (N, ticks/s): few subscribers, enough bytes to stall
    slow_window: float
    slow_pairs: int  # alternating windows without / with the stalled subscriber
    idle_n: int
    rtt_ops: int
    risk_iterations: int
    bridges: int
    poller_seconds: float
    churn_rate: float  # ticks/s while measuring ping and delivery under subscription churn
    churn_window: float
    churn_pairs: int  # alternating windows quiet / under attack
    # ticks/s one hub is asked to publish through Redis (the Redis path's publish sweep)
    redis_rates: tuple[int, ...] = (1_000, 2_000, 5_000, 10_000, 20_000, 50_000)


FULL = Scale(
    name="full",
    subscribers=(500, 2000),
    window=2.0,
    drain=2.0,
    warmup=0.5,
    one_frame=(
        20_000,
        40_000,
        60_000,
        80_000,
        100_000,
        130_000,
        160_000,
        200_000,
        250_000,
        350_000,
        500_000,
    ),
    batched=(100_000, 250_000, 500_000, 1_000_000, 1_500_000, 2_000_000, 3_000_000),
    light_rate=100.0,
    light_window=3.0,
    settle=1.0,
    slow_n=2000,
    slow_fast=(50, 1000.0),
    slow_window=5.0,
    slow_pairs=3,
    idle_n=5000,
    rtt_ops=1000,
    risk_iterations=20_000,
    bridges=100,
    poller_seconds=10.0,
    churn_rate=2000.0,
    churn_window=10.0,
    churn_pairs=3,
)

QUICK = msgspec.structs.replace(
    FULL,
    name="quick",
    window=1.0,
    drain=1.0,
    warmup=0.3,
    one_frame=(20_000, 50_000, 80_000, 120_000, 160_000, 250_000, 350_000, 500_000),
    batched=(100_000, 500_000, 1_000_000, 2_000_000, 3_000_000),
    light_window=2.0,
    slow_window=2.0,
    slow_pairs=2,
    idle_n=2000,
    rtt_ops=300,
    risk_iterations=5_000,
    bridges=50,
    poller_seconds=4.0,
    churn_window=5.0,
    churn_pairs=2,
)

SMOKE = msgspec.structs.replace(
    FULL,
    name="smoke",
    subscribers=(10,),
    window=0.2,
    drain=0.5,
    warmup=0.1,
    one_frame=(500, 1000),
    batched=(1000,),
    light_rate=20.0,
    light_window=0.3,
    settle=0.2,
    slow_n=10,
    slow_fast=(5, 200.0),
    slow_window=0.3,
    slow_pairs=1,
    idle_n=20,
    rtt_ops=10,
    risk_iterations=200,
    bridges=3,
    poller_seconds=1.0,
    churn_rate=100.0,
    churn_window=0.5,
    churn_pairs=1,
    redis_rates=(200, 500),
)


class Rig:
    """Owns the child processes of one run: servers on one core, the load on the other."""

    def __init__(self, work: Path, *, split_load: bool = True) -> None:
        self.work = work
        self.split_load = split_load  # False: one load process samples too (see bench._load)
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.server_core, self.client_core = cores()
        self._load: Load | None = None
        self._children: list[Child] = []

    async def server(
        self,
        kind: str,
        config: str | None = None,
        name: str | None = None,
        extra: tuple[str, ...] = (),
        core: set[int] | None = None,
    ) -> Child:
        """A server under test, on the server core unless ``core`` says otherwise."""
        args = [kind, *extra]
        name = name or kind
        if config is not None:
            args += ["--config", str(write(self.work, f"{name}.yml", config))]
        child = await Child.start(
            "bench.serve", *args, core=core or self.server_core, log_dir=self.logs, name=name
        )
        self._children.append(child)
        return child

    async def process(self, module: str, *args: str, name: str, core: set[int]) -> Child:
        child = await Child.start(module, *args, core=core, log_dir=self.logs, name=name)
        self._children.append(child)
        return child

    async def load(self) -> Load:
        """The load generator: bulk and sampler processes on the client core (see
        :mod:`bench._load`)."""
        if self._load is None:
            bulk = await self.process("bench.load", name="load", core=self.client_core)
            sampler = (
                await self.process("bench.load", name="load-sampler", core=self.client_core)
                if self.split_load
                else None
            )
            self._load = Load(bulk, sampler)
        return self._load

    async def stop(self, child: Child) -> None:
        await child.stop()
        if child in self._children:
            self._children.remove(child)
        if self._load is not None and child in self._load.children:
            self._load = None

    async def close(self) -> None:
        for child in list(self._children):
            await self.stop(child)


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, within: float = 60.0, interval: float = 0.05
) -> None:
    """Poll ``check`` until it returns True."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {within:g} s")
        await asyncio.sleep(interval)
