"""The Redis path: one hub publishing through a real Redis, a second instance's subscribers.

Two hub processes share one Redis (``REDIS_URL``): the broker and the coordination of
several instances, as in a real multi-instance deployment. Measured:

- **cross-instance latency**: hub A (on the load generator's core: it only publishes)
  injects ticks at a moderate rate; hub B (on the server core) receives them from Redis
  and fans them out to N subscribers of the load generator. Latency runs from the tick's
  scheduled time at A to its arrival at a subscriber of B.
- **max publish rate**: A alone is asked for increasing tick rates; each publish awaits
  its Redis round trip, as a poller's does. The figure is the most ticks/s it published
  at a rate it kept up with (within 10 %), or the most it published at all when it kept
  up with none.

Redis comes from ``TEST_REDIS_URL`` when set, else a throwaway one started with
``scripts/services.sh`` (installed the first time) and stopped after.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec

from bench.configs import fanout_config
from bench.fanout import Point, _connect, _disconnect, _line, _measure, _subscribers, _warm
from bench.records import _services
from bench.rig import Rig, Scale

__all__ = ["PublishRate", "RedisPathResult", "run_redis_path"]

_KEPT_UP = 0.9


class PublishRate(msgspec.Struct, frozen=True, kw_only=True):
    offered: float  # ticks/s asked of hub A
    published: float  # ticks/s it published
    lag_ms: float  # how far its injector fell behind
    cpu_pct: float  # hub A, % of one core

    @property
    def kept_up(self) -> bool:
        return self.published >= _KEPT_UP * self.offered


class RedisPathResult(msgspec.Struct, frozen=True, kw_only=True):
    n: int  # subscribers on hub B
    rate: float  # ticks/s of the latency window
    point: Point  # delivered to B's subscribers: latency, B's CPU
    publish: list[PublishRate]
    redis: str  # where Redis came from

    @property
    def max_publish(self) -> float:
        kept = [p.published for p in self.publish if p.kept_up]
        return max(kept or [p.published for p in self.publish] or [0.0])


@contextlib.asynccontextmanager
async def _redis(rig: Rig) -> AsyncIterator[tuple[str, str]]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url, "TEST_REDIS_URL"
        return
    services = rig.work / "services-redis"
    await _services("start", services, rig.logs, "redis")
    try:
        yield _read_url(services / "env"), "a throwaway redis-server (scripts/services.sh)"
    finally:
        await _services("stop", services, rig.logs, "redis")


def _read_url(env_file: Path) -> str:
    for line in env_file.read_text().splitlines():
        if line.startswith("export TEST_REDIS_URL="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError(f"{env_file}: no TEST_REDIS_URL (Redis did not start)")


async def run_redis_path(
    rig: Rig, scale: Scale, progress: Callable[[str], None]
) -> RedisPathResult:
    load = await rig.load()
    n = min(scale.subscribers)
    async with _redis(rig) as (url, source):
        # a Redis of its own per run: nothing of an earlier run's channels or leases
        prefix = f"bench{os.getpid()}x{int(time.time())}"
        extra = ("--redis", url, "--redis-prefix", prefix)
        b = await rig.server("hub", fanout_config(), name="hub-redis-b", extra=extra)
        a = await rig.server(
            "hub", fanout_config(), name="hub-redis-a", extra=extra, core=rig.client_core
        )
        try:
            base = await _subscribers(b)
            await _connect(b, load, "hub", n, False, base=base)
            await _warm(b, load, scale, n, "one-frame", "hub")
            point = await _measure(
                b,
                load,
                scale,
                kind="hub-redis",
                mode="one-frame",
                n=n,
                rate=scale.light_rate,
                window=scale.light_window,
                publisher=a,
            )
            progress("redis path:" + _line(point))
            await _disconnect(b, load, "hub", base=base)
            publish: list[PublishRate] = []
            for rate in scale.redis_rates:
                cpu0, t0 = a.cpu(), time.monotonic()
                sent = await a.request(
                    cmd="inject",
                    rate=float(rate),
                    duration=scale.window,
                    within=scale.window * 30 + 60,
                )
                cpu = (a.cpu() - cpu0) / max(1e-9, time.monotonic() - t0)
                step = PublishRate(
                    offered=float(rate),
                    published=round(int(sent["sent"]) / max(1e-9, float(sent["seconds"])), 1),
                    lag_ms=round(float(sent["max_lag_ms"]), 1),
                    cpu_pct=round(100 * cpu, 1),
                )
                progress(
                    f"redis publish: offered {rate:>8,} ticks/s  published"
                    f" {step.published:>9,.0f}/s  lag {step.lag_ms} ms  cpu {step.cpu_pct}%"
                )
                publish.append(step)
                if not step.kept_up:
                    break
        finally:
            await rig.stop(a)
            await rig.stop(b)
    return RedisPathResult(n=n, rate=scale.light_rate, point=point, publish=publish, redis=source)
