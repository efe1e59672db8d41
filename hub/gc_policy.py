"""Garbage-collector policy for the hub process (long-running, fanning out to many sockets).

A full collection walks every tracked object and stalls the event loop — every
subscriber — for tens of ms on a hub with thousands of connections. :func:`tune_gc`,
called once after start-up, moves everything alive then (modules, config, the app) out of
the collected generations with :func:`gc.freeze` and raises the gen-0 threshold so the
short-lived per-message objects are collected in fewer, cheaper passes.
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]


def tune_gc(gen0: int = 50_000, gen1: int = 20, gen2: int = 100) -> tuple[int, int, int]:
    """Collect, freeze what is alive, set the thresholds; returns the previous thresholds."""
    if gen0 < 1 or gen1 < 1 or gen2 < 1:
        raise ValueError(f"gc thresholds: must be >= 1, got {gen0}, {gen1}, {gen2}")
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(gen0, gen1, gen2)
    return previous
