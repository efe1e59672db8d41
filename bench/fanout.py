"""Fan-out benchmarks: the offered-rate sweep (hub and baselines), slow consumer, idle,
and the busy-machine variant.

Each server runs in its own process pinned to one core; the load generator (many
picows connections) runs on the other. Offered load is given in delivered messages
per second (ticks/s x subscribers); a sweep stops at the first saturated rate, except
for the ``websockets`` one-frame baseline, measured at every rate of the sweep so that
the hub's p99 at each rate has its counterpart. The busy variant (:func:`run_busy`) is
the one-frame sweep at the largest N with one CPU-bound process (:mod:`bench.hog`)
sharing the server's core, for the hub and ``websockets`` alike.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import msgspec

from bench._load import Load
from bench._proc import Child
from bench.configs import fanout_config
from bench.rig import Rig, Scale, wait_until
from bench.serve import CHANNEL, TOKEN

__all__ = [
    "SERIES",
    "FanoutResult",
    "IdleResult",
    "Point",
    "SlowConsumerResult",
    "run_busy",
    "run_fanout",
    "run_idle",
    "run_slow_consumer",
]

SERIES: tuple[tuple[str, str], ...] = (
    ("hub", "one-frame"),
    ("hub", "batch"),
    ("broadcaster", "one-frame"),
    ("websockets", "one-frame"),
    ("websockets-batch", "batch"),
)
"""(server, frame mode) pairs measured by the sweep."""

EVERY_RATE = ("websockets",)  # one-frame baselines measured at every rate, saturated or not
_SATURATED = 0.9  # delivered below this share of offered: saturated
_LATENCY_CAP_MS = 1000.0  # p99 above this: saturated
_SAMPLE_CONNECTIONS = 80  # connections per run that parse frames for latency

Progress = Callable[[str], None]


class Point(msgspec.Struct, frozen=True, kw_only=True):
    """One measured rate of one server, mode and subscriber count."""

    server: str
    mode: str
    n: int
    rate: float  # ticks/s offered
    offered: float  # msg/s offered (rate x n)
    delivered: float  # msg/s received by all subscribers
    fraction: float  # messages received / (ticks sent x n)
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    samples: int
    cpu_pct: float  # server process, % of one core
    rss_mb: float  # server process after the window
    lag_ms: float  # how far the injector itself fell behind its schedule
    gc_max_ms: float = 0.0  # longest garbage-collector pause in the server while injecting
    # per-iteration timing (bench._control.LoopProbe) while injecting: how late the server's
    # loop ran a 1 ms timer (wall) and the CPU it used between two wake-ups (its own work);
    # the same for the load generator (the harness's share of the latency)
    loop_late_p99_ms: float | None = None
    loop_late_max_ms: float | None = None
    loop_busy_p99_ms: float | None = None
    loop_busy_max_ms: float | None = None
    load_late_p99_ms: float | None = None
    load_busy_p99_ms: float | None = None
    # p99 in the same window from connections of the bulk load process (the harness before
    # bench._load split off a sampler): the harness's own share, side by side
    p99_bulk_ms: float | None = None
    busy: bool = False  # a CPU-bound process shared the server's core

    @property
    def saturated(self) -> bool:
        late = self.p99_ms is not None and self.p99_ms > _LATENCY_CAP_MS
        return late or self.delivered < _SATURATED * self.offered


class FanoutResult(msgspec.Struct, frozen=True, kw_only=True):
    points: list[Point]
    light: list[Point]
    busy: list[Point] = msgspec.field(default_factory=list)  # run_busy, when run


class SlowConsumerResult(msgspec.Struct, frozen=True, kw_only=True):
    n: int
    rate: float
    without: Point  # the window of median p99 among those without the stalled subscriber
    with_slow: Point  # and among those with it
    rss_growth_mb: float
    bytes_offered_to_slow: int
    without_p99_ms: list[float | None] = msgspec.field(default_factory=list)  # every window
    with_p99_ms: list[float | None] = msgspec.field(default_factory=list)


class IdleResult(msgspec.Struct, frozen=True, kw_only=True):
    n: int
    rss_before_mb: float
    rss_after_mb: float
    kb_per_connection: float
    connect_seconds: float


def _url(kind: str, port: int, batch: bool) -> tuple[str, str | None]:
    if kind == "hub":
        return f"ws://127.0.0.1:{port}/ws?token={TOKEN}{'&batch=1' if batch else ''}", CHANNEL
    return f"ws://127.0.0.1:{port}/ws", None


async def _subscribers(server: Child) -> int:
    return int((await server.request(cmd="subscribers"))["subscribers"])


async def _connect(
    server: Child,
    load: Load,
    kind: str,
    n: int,
    batch: bool,
    within: float = 120.0,
    base: int = 0,
) -> float:
    """Connect ``n`` subscribers; ``base``: the server's own subscribers (a Redis hub's
    mirror of shared state is one)."""
    url, channel = _url(kind, int(server.ready["port"]), batch)
    every = max(1, n // _SAMPLE_CONNECTIONS)
    reply = await load.request(
        within=within,
        cmd="connect",
        url=url,
        n=n,
        batch=batch,
        subscribe=channel,
        sample_every=every,
        timeout=within / 2,
    )

    async def all_in() -> bool:
        return await _subscribers(server) >= base + n

    await wait_until(all_in, f"{kind}: {n} subscribers", within)
    return float(reply["seconds"])


async def _disconnect(server: Child, load: Load, kind: str, base: int = 0) -> None:
    await load.request(cmd="close", within=60)

    async def none_left() -> bool:
        return await _subscribers(server) <= base

    await wait_until(none_left, f"{kind}: subscribers gone", 60)


async def _measure(
    server: Child,
    load: Load,
    scale: Scale,
    *,
    kind: str,
    mode: str,
    n: int,
    rate: float,
    window: float | None = None,
    publisher: Child | None = None,
    busy: bool = False,
) -> Point:
    """One window at ``rate`` ticks/s, injected by ``server`` (or by ``publisher``, another
    instance publishing through Redis: then ``server`` only fans out)."""
    window = window or scale.window
    start = await load.request(cmd="mark", reset=True)
    cpu0, t0 = server.cpu(), time.monotonic()
    injected = await (publisher or server).request(
        cmd="inject", rate=rate, duration=window, probe=True, within=window * 20 + 60
    )
    expected = int(start["count"]) + int(injected["sent"]) * n
    deadline = time.monotonic() + scale.drain
    stats = await load.request(cmd="stats")
    while int(stats["count"]) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        stats = await load.request(cmd="stats")
    cpu = (server.cpu() - cpu0) / max(1e-9, time.monotonic() - t0)
    received = int(stats["count"]) - int(start["count"])
    elapsed = max(1e-9, float(stats["last_at"]) - float(start["t"]))
    return Point(
        server=kind,
        mode=mode,
        n=n,
        rate=rate,
        offered=rate * n,
        delivered=round(received / elapsed, 1),
        fraction=round(received / max(1, int(injected["sent"]) * n), 4),
        p50_ms=stats["p50"],
        p99_ms=stats["p99"],
        max_ms=stats["max"],
        samples=int(stats["samples"]),
        cpu_pct=round(100 * cpu, 1),
        rss_mb=round(server.rss() / 2**20, 1),
        lag_ms=round(float(injected["max_lag_ms"]), 1),
        gc_max_ms=round(float(injected["gc_max_ms"]), 1),
        loop_late_p99_ms=round(float(injected["loop_late_p99_ms"]), 2),
        loop_late_max_ms=round(float(injected["loop_late_max_ms"]), 2),
        loop_busy_p99_ms=round(float(injected["loop_busy_p99_ms"]), 2),
        loop_busy_max_ms=round(float(injected["loop_busy_max_ms"]), 2),
        load_late_p99_ms=round(float(stats["load_loop_late_p99_ms"]), 2),
        load_busy_p99_ms=round(float(stats["load_loop_busy_p99_ms"]), 2),
        p99_bulk_ms=stats.get("bulk_p99"),
        busy=busy,
    )


async def _warm(server: Child, load: Load, scale: Scale, n: int, mode: str, kind: str) -> None:
    rate = max(1.0, scale.one_frame[0] / n)
    await _measure(server, load, scale, kind=kind, mode=mode, n=n, rate=rate, window=scale.warmup)


async def _sweep(
    server: Child,
    load: Load,
    scale: Scale,
    *,
    kind: str,
    mode: str,
    n: int,
    progress: Progress,
) -> list[Point]:
    targets = scale.batched if mode == "batch" else scale.one_frame
    every = kind in EVERY_RATE and mode == "one-frame"
    points: list[Point] = []
    for offered in targets:
        point = await _measure(server, load, scale, kind=kind, mode=mode, n=n, rate=offered / n)
        progress(_line(point))
        points.append(point)
        if point.saturated and not every:
            break
    return points


def _line(p: Point) -> str:
    p99 = "-" if p.p99_ms is None else f"{p.p99_ms:.1f}"
    return (
        f"  {p.server:<17} {p.mode:<9} N={p.n:<5} offered {p.offered:>10,.0f}/s"
        f"  delivered {p.delivered:>10,.0f}/s  p99 {p99:>8} ms  cpu {p.cpu_pct:5.1f}%"
    )


async def run_fanout(rig: Rig, scale: Scale, progress: Progress) -> FanoutResult:
    """The sweep for every series in :data:`SERIES`, N by N, in one run."""
    load = await rig.load()
    points: list[Point] = []
    light: list[Point] = []
    kinds = list(dict.fromkeys(kind for kind, _ in SERIES))
    for kind in kinds:
        modes = [mode for k, mode in SERIES if k == kind]
        server = await rig.server(kind, fanout_config() if kind == "hub" else None)
        try:
            for n in scale.subscribers:
                for mode in modes:
                    await _connect(server, load, kind, n, mode == "batch")
                    await _warm(server, load, scale, n, mode, kind)
                    if kind == "hub" and n == min(scale.subscribers):
                        point = await _measure(
                            server,
                            load,
                            scale,
                            kind=kind,
                            mode=mode,
                            n=n,
                            rate=scale.light_rate,
                            window=scale.light_window,
                        )
                        progress("light" + _line(point)[5:])
                        light.append(point)
                    points += await _sweep(
                        server, load, scale, kind=kind, mode=mode, n=n, progress=progress
                    )
                    await _disconnect(server, load, kind)
        finally:
            await rig.stop(server)
    return FanoutResult(points=points, light=light)


async def run_busy(rig: Rig, scale: Scale, progress: Progress) -> list[Point]:
    """The one-frame sweep at the largest N with a CPU-bound process on the server's core,
    for the hub and ``websockets`` (both at every rate)."""
    load = await rig.load()
    n = max(scale.subscribers)
    points: list[Point] = []
    for kind in ("hub", "websockets"):
        server = await rig.server(kind, fanout_config() if kind == "hub" else None)
        try:
            await _connect(server, load, kind, n, False)
            await _warm(server, load, scale, n, "one-frame", kind)
            hog = await rig.process("bench.hog", name=f"hog-{kind}", core=rig.server_core)
            try:
                for offered in scale.one_frame:
                    point = await _measure(
                        server,
                        load,
                        scale,
                        kind=kind,
                        mode="one-frame",
                        n=n,
                        rate=offered / n,
                        busy=True,
                    )
                    progress("busy:" + _line(point))
                    points.append(point)
            finally:
                await rig.stop(hog)
            await _disconnect(server, load, kind)
        finally:
            await rig.stop(server)
    return points


def _masked_text(payload: bytes) -> bytes:
    """One client-to-server text frame (payload < 126 bytes)."""
    if len(payload) >= 126:
        raise ValueError("payload: must be under 126 bytes for this helper")
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + mask + body


async def stalled_subscriber(port: int, channel: str) -> socket.socket:
    """A subscribed connection that never reads again (tiny receive buffer)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    async with asyncio.timeout(10):
        await loop.sock_connect(sock, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /ws?token={TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await loop.sock_recv(sock, 4096)
            if not chunk:
                raise ConnectionError("stalled subscriber: hub closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"stalled subscriber: handshake refused: {head[:80]!r}")
        op = {"op": "subscribe", "id": "slow", "channels": [channel]}
        await loop.sock_sendall(sock, _masked_text(json.dumps(op).encode()))
    return sock


async def run_slow_consumer(
    rig: Rig, scale: Scale, n: int, rate: float, progress: Progress
) -> SlowConsumerResult:
    """Others' latency and hub RSS with and without one subscriber that never reads.

    Windows alternate, without then with a fresh stalled subscriber, ``scale.slow_pairs``
    times: one pair is a single sample of a scheduling-dominated tail, so the medians are
    compared, and RSS growth is counted from the first window to the last.
    """
    load = await rig.load()
    server = await rig.server("hub", fanout_config(), name="hub-slow")
    withouts: list[Point] = []
    withs: list[Point] = []
    try:
        await _connect(server, load, "hub", n, False)
        await _warm(server, load, scale, n, "one-frame", "hub")
        window = scale.slow_window
        common: dict[str, Any] = {"kind": "hub", "mode": "one-frame", "n": n, "rate": rate}
        for _ in range(scale.slow_pairs):
            withouts.append(await _measure(server, load, scale, window=window, **common))
            progress("slow: without  " + _line(withouts[-1])[2:])
            stalled = await stalled_subscriber(int(server.ready["port"]), CHANNEL)
            try:
                await asyncio.sleep(scale.settle)
                withs.append(await _measure(server, load, scale, window=window, **common))
                progress("slow: stalled " + _line(withs[-1])[2:])
            finally:
                stalled.close()
            await asyncio.sleep(scale.settle)  # the hub notices the close and drops it
        await _disconnect(server, load, "hub")
    finally:
        await rig.stop(server)
    return SlowConsumerResult(
        n=n,
        rate=rate,
        without=_median_p99(withouts),
        with_slow=_median_p99(withs),
        rss_growth_mb=round(withs[-1].rss_mb - withouts[0].rss_mb, 2),
        bytes_offered_to_slow=int(rate * window * 135),
        without_p99_ms=[p.p99_ms for p in withouts],
        with_p99_ms=[p.p99_ms for p in withs],
    )


def _median_p99(points: list[Point]) -> Point:
    """The point of median p99 (a missing p99 counts as the worst)."""
    ranked = sorted(points, key=lambda p: float("inf") if p.p99_ms is None else p.p99_ms)
    return ranked[(len(ranked) - 1) // 2]


async def run_idle(rig: Rig, scale: Scale, progress: Progress) -> IdleResult:
    """RSS per idle subscribed connection of a fresh hub."""
    load = await rig.load()
    n = scale.idle_n
    server = await rig.server("hub", fanout_config(), name="hub-idle")
    try:
        await asyncio.sleep(scale.settle)
        before = server.rss()
        seconds = await _connect(server, load, "hub", n, False, within=300)
        await asyncio.sleep(scale.settle)
        after = server.rss()
        await _disconnect(server, load, "hub")
    finally:
        await rig.stop(server)
    result = IdleResult(
        n=n,
        rss_before_mb=round(before / 2**20, 1),
        rss_after_mb=round(after / 2**20, 1),
        kb_per_connection=round((after - before) / n / 1024, 2),
        connect_seconds=round(seconds, 2),
    )
    progress(
        f"idle: {n} subscribed connections: {result.rss_before_mb} -> {result.rss_after_mb} MB,"
        f" {result.kb_per_connection} KB each"
    )
    return result
