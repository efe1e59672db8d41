"""Garbage-collector policy for the hub process (long-running, fanning out to many sockets).

A full collection walks every tracked object and stalls the event loop — every
subscriber — for tens of ms on a hub with thousands of connections. :func:`tune_gc`,
called once after start-up, moves everything alive then (modules, config, the app) out of
the collected generations with :func:`gc.freeze` and raises the gen-0 threshold so the
short-lived per-message objects are collected in fewer, cheaper passes.

The interpreter counts allocations, not time: with that threshold, a quiet hub that makes a
few reference cycles a second (a closed HTTP connection, a bridge fault's exception) would
keep them for hours before its first pass, and its memory would climb all that while.
:class:`Schedule` also collects on a clock: the youngest generation every ``every``
seconds, an older one when the interpreter's own counts make it due, and a full pass at
most once per ``full_every``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

__all__ = ["COLLECT_EVERY_S", "FULL_AT_MOST_EVERY_S", "Schedule", "tune_gc"]

log = logging.getLogger("mt4hub.gc")

COLLECT_EVERY_S = 10.0
FULL_AT_MOST_EVERY_S = 3600.0


def tune_gc(gen0: int = 50_000, gen1: int = 20, gen2: int = 100) -> tuple[int, int, int]:
    """Collect, freeze what is alive, set the thresholds; returns the previous thresholds."""
    if gen0 < 1 or gen1 < 1 or gen2 < 1:
        raise ValueError(f"gc thresholds: must be >= 1, got {gen0}, {gen1}, {gen2}")
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0, gen1, gen2)
    return previous


def _full_passes() -> int:
    return int(gc.get_stats()[2]["collections"])


class Schedule:
    """Collections on a clock, so that no garbage cycle outlives ``every`` seconds in the
    youngest generation (older ones: when their counts are due, as the interpreter would)."""

    def __init__(
        self, every: float = COLLECT_EVERY_S, full_every: float = FULL_AT_MOST_EVERY_S
    ) -> None:
        self.every = every
        self.full_every = full_every
        self._full_at = time.monotonic()
        self._fulls = _full_passes()

    def collect_due(self) -> int:
        """One pass: generation 2 when its count passed its threshold and no full pass ran
        for ``full_every``, else 1 when its count passed, else 0. Returns the generation."""
        now, fulls = time.monotonic(), _full_passes()
        if fulls != self._fulls:  # the interpreter ran one itself
            self._fulls, self._full_at = fulls, now
        counts, thresholds = gc.get_count(), gc.get_threshold()
        generation = 0
        if counts[2] > thresholds[2] and now - self._full_at >= self.full_every:
            generation = 2
        elif counts[1] > thresholds[1]:
            generation = 1
        found = gc.collect(generation)
        if generation == 2:
            self._fulls, self._full_at = _full_passes(), now
            pause_ms = (time.monotonic() - now) * 1000
            log.info("gc_full_pass collected=%d pause_ms=%.1f", found, pause_ms)
        return generation

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.collect_due()
