"""Subscription churn: ping round trip and delivered ticks while an attacker holds many
patterns and churns subscriptions (the attack of issue 14, finding 4).

The hub runs in its own process (``bench.serve hub``, pinned to one core) with ticks
injected on ``agent:agent_1:ticks``. Here, on the other core, one reader subscribes to
that channel, counts the ticks it gets and pings the hub :data:`PINGS_PER_S` times a
second. Windows alternate: quiet, then under attack — :data:`STREAMS` SSE streams holding
:data:`PATTERNS` distinct patterns each (none matching a published channel) plus one
socket subscribing and unsubscribing a pattern :data:`CHURN_PER_S` times a second. Before
the fix every subscription change made the next publication re-match every pattern held.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect

from bench._proc import Child
from bench._stats import summarize
from bench.configs import fanout_config
from bench.rig import Rig, Scale
from bench.serve import CHANNEL, TOKEN

__all__ = ["ChurnResult", "ChurnWindow", "delivered_per_s", "run_churn"]

STREAMS = 20
PATTERNS = 3000  # per stream: the 5,000 exceed one request line; the cap is raised
CHURN_PER_S = 40.0  # subscription ops per second on one socket (under its 50 messages/s)
PINGS_PER_S = 40.0
_DRAIN = 0.5  # s to let the window's last ticks arrive


class ChurnWindow(msgspec.Struct, frozen=True, kw_only=True):
    attack: bool
    ticks_sent: int
    ticks_delivered: int
    seconds: float  # from the first tick sent to the last received (a busy hub stretches it)
    ping_ms: dict[str, float | int | None]  # samples, p50, p99, max
    churn_ops: int
    hub_cpu_pct: float


class ChurnResult(msgspec.Struct, frozen=True, kw_only=True):
    rate: float  # ticks/s injected
    window: float  # s per window
    streams: int
    patterns_per_stream: int
    churn_per_s: float
    quiet: ChurnWindow  # the window of median ping p99 among the quiet ones
    attack: ChurnWindow  # and among those under attack
    windows: list[ChurnWindow]


def delivered_per_s(window: ChurnWindow) -> float:
    """Ticks the reader got per second of the window."""
    return window.ticks_delivered / window.seconds if window.seconds > 0 else 0.0


class _Reader:
    """One socket on the tick channel: counts ticks, and pings with ids."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ticks = 0
        self.last_tick_at = 0.0  # monotonic
        self.sent: dict[str, float] = {}
        self.rtts: list[float] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            now = time.perf_counter()
            for line in str(raw).splitlines():
                msg = json.loads(line)
                kind = msg.get("type")
                if kind == "event" and msg.get("ch") == CHANNEL:
                    self.ticks += 1
                    self.last_tick_at = time.monotonic()
                elif kind == "pong":
                    started = self.sent.pop(str(msg.get("id")), None)
                    if started is not None:
                        self.rtts.append((now - started) * 1000)

    async def ping_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        for i in itertools.count():
            if time.monotonic() >= end:
                return
            key = f"p{i}-{time.monotonic_ns()}"
            self.sent[key] = time.perf_counter()
            await self.ws.send(json.dumps({"op": "ping", "id": key}))
            await asyncio.sleep(1 / PINGS_PER_S)

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def _sse_stream(port: int, channels: list[str]) -> tuple[asyncio.Task[None], Any]:
    """An SSE stream on ``channels``, read and discarded until cancelled."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    query = ",".join(channels)
    writer.write(
        f"GET /api/stream?channels={query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"SSE stream refused: {status!r} {await reader.read(300)!r}")
    async with asyncio.timeout(60):
        while b": connected" not in await reader.readline():  # every pattern subscribed
            pass

    async def drain() -> None:
        while await reader.read(65536):
            pass

    return asyncio.create_task(drain()), writer


def _patterns(stream: int) -> list[str]:
    """Distinct patterns of three shapes, none matching a channel the hub publishes."""
    shapes = ("agent:s{0}x{1}:*", "*:s{0}x{1}:ticks", "agent:s{0}x{1}:orders")
    return [shapes[i % 3].format(stream, i) for i in range(PATTERNS)]


async def _churn(ws: ClientConnection, counter: list[int]) -> None:
    """Subscribe and unsubscribe a pattern, alternately, ``CHURN_PER_S`` times a second."""

    async def discard() -> None:
        async for _ in ws:
            pass

    reading = asyncio.create_task(discard())
    try:
        for i in itertools.count():
            op = "subscribe" if i % 2 == 0 else "unsubscribe"
            channels = [f"agent:churn{i // 2}:*"]
            await ws.send(json.dumps({"op": op, "id": str(i), "channels": channels}))
            counter[0] += 1
            await asyncio.sleep(1 / CHURN_PER_S)
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)


@contextlib.asynccontextmanager
async def _attack(port: int, counter: list[int]) -> Any:
    streams = [await _sse_stream(port, _patterns(s)) for s in range(STREAMS)]
    churner = await connect(f"ws://127.0.0.1:{port}/ws?token={TOKEN}", compression=None)
    await churner.recv()  # welcome
    churning = asyncio.create_task(_churn(churner, counter))
    try:
        yield
    finally:
        churning.cancel()
        await asyncio.gather(churning, return_exceptions=True)
        await churner.close()
        for task, writer in streams:
            task.cancel()
            writer.close()
        await asyncio.gather(*(task for task, _ in streams), return_exceptions=True)


async def _window(server: Child, reader: _Reader, scale: Scale, attack: bool) -> ChurnWindow:
    port = int(server.ready["port"])
    counter = [0]
    async with contextlib.AsyncExitStack() as stack:
        if attack:
            await stack.enter_async_context(_attack(port, counter))
            await asyncio.sleep(scale.settle)  # the streams are subscribed, the churn runs
        reader.rtts.clear()
        ticks0, cpu0, t0 = reader.ticks, server.cpu(), time.monotonic()
        reader.last_tick_at = t0
        window = scale.churn_window
        injected, _ = await asyncio.gather(
            server.request(
                cmd="inject", rate=scale.churn_rate, duration=window, within=window * 20 + 60
            ),
            reader.ping_for(window),
        )
        await asyncio.sleep(_DRAIN)
        cpu = (server.cpu() - cpu0) / max(1e-9, time.monotonic() - t0)
        return ChurnWindow(
            attack=attack,
            ticks_sent=int(injected["sent"]),
            ticks_delivered=reader.ticks - ticks0,
            seconds=round(reader.last_tick_at - t0, 3),
            ping_ms=summarize(reader.rtts),
            churn_ops=counter[0],
            hub_cpu_pct=round(100 * cpu, 1),
        )


def _median(windows: list[ChurnWindow]) -> ChurnWindow:
    ranked = sorted(windows, key=lambda w: float(w.ping_ms["p99"] or 0.0))
    return ranked[len(ranked) // 2]


async def run_churn(rig: Rig, scale: Scale) -> ChurnResult:
    """``scale.churn_pairs`` pairs of windows, quiet then under attack."""
    config = fanout_config().replace("server: {", f"server: {{max_subscriptions: {PATTERNS}, ", 1)
    server = await rig.server("hub", config, name="hub-churn")
    try:
        ws = await connect(f"ws://127.0.0.1:{server.ready['port']}/ws?token={TOKEN}",
                           compression=None, max_size=None)  # fmt: skip
        await ws.recv()  # welcome
        await ws.send(json.dumps({"op": "subscribe", "id": "s", "channels": [CHANNEL]}))
        reader = _Reader(ws)
        try:
            await server.request(cmd="inject", rate=scale.churn_rate, duration=scale.warmup)
            windows = []
            for _ in range(scale.churn_pairs):
                for attack in (False, True):
                    windows.append(await _window(server, reader, scale, attack))
        finally:
            await reader.close()
    finally:
        await rig.stop(server)
    return ChurnResult(
        rate=scale.churn_rate,
        window=scale.churn_window,
        streams=STREAMS,
        patterns_per_stream=PATTERNS,
        churn_per_s=CHURN_PER_S,
        quiet=_median([w for w in windows if not w.attack]),
        attack=_median([w for w in windows if w.attack]),
        windows=windows,
    )
