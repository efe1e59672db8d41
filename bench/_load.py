"""The load side of a fan-out run: a bulk process and a sampler process (both ``bench.load``).

One process reading thousands of sockets handles a fanned-out message socket after socket
in one long event-loop iteration (~10 ms for 2000 connections), and a sampled connection
read late in that iteration reports that time as the server's latency. So the connections
that sample latency (every ``sample_every``-th) live in a second, lightly loaded process
on the same core, woken as soon as their data arrives; the bulk process only counts.
Connections are opened in rounds, bulk then sampler, so the samples are spread through
the server's connection order (and so through the order in which it writes to them).

:class:`Load` answers the same commands as one ``bench.load`` child (``connect``,
``mark``, ``stats``, ``close``), merging the two: counts add up, latency comes from the
sampler, the loop timing is the bulk process's. The bulk process samples too, every
``sample_every``-th of its own connections as the one process did before: its p99 comes
back as ``bulk_p99``, the same window as the old harness saw it, side by side. Without a
sampler (``Rig(split_load=False)``) it is the bulk process alone, the harness as it was.
"""

from __future__ import annotations

from typing import Any

from bench._proc import Child

__all__ = ["Load"]

_ROUNDS = 8  # connect rounds (bulk, then sampler): where the samples sit in the order


class Load:
    """Two ``bench.load`` children driven as one."""

    def __init__(self, bulk: Child, sampler: Child | None) -> None:
        self.bulk = bulk
        self.sampler = sampler

    @property
    def children(self) -> tuple[Child, ...]:
        return (self.bulk,) if self.sampler is None else (self.bulk, self.sampler)

    async def request(self, within: float = 60.0, **command: Any) -> dict[str, Any]:
        cmd = command.get("cmd")
        if self.sampler is None:
            return await self.bulk.request(within=within, **command)
        if cmd == "connect":
            return await self._connect(within, command)
        bulk = await self.bulk.request(within=within, **command)
        sampled = await self.sampler.request(within=within, **command)
        if cmd == "mark":
            return {"t": bulk["t"], "count": int(bulk["count"]) + int(sampled["count"])}
        if cmd == "stats":
            merged = {
                **bulk,
                "count": int(bulk["count"]) + int(sampled["count"]),
                "last_at": max(float(bulk["last_at"]), float(sampled["last_at"])),
                "closed": int(bulk["closed"]) + int(sampled["closed"]),
                "open": int(bulk["open"]) + int(sampled["open"]),
            }
            for key in ("samples", "p50", "p99", "max"):
                merged[key] = sampled[key]
                merged[f"bulk_{key}"] = bulk[key]
            return merged
        return {"bulk": bulk, "sampler": sampled}

    async def _connect(self, within: float, command: dict[str, Any]) -> dict[str, Any]:
        assert self.sampler is not None
        n = int(command["n"])
        every = max(1, int(command.get("sample_every", 25)))
        samples = max(1, n // every)
        rounds = min(_ROUNDS, samples)
        seconds = 0.0
        bulk_left, sample_left = n - samples, samples
        for r in range(rounds, 0, -1):
            bulk_n, sample_n = bulk_left // r, sample_left // r
            for child, count, sample_every in (
                (self.bulk, bulk_n, every),
                (self.sampler, sample_n, 1),
            ):
                if count:
                    reply = await child.request(
                        within=within, **{**command, "n": count, "sample_every": sample_every}
                    )
                    seconds += float(reply["seconds"])
            bulk_left -= bulk_n
            sample_left -= sample_n
        return {"connected": n, "seconds": seconds}
