"""Percentiles (nearest rank) of latency samples, in the units given."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["percentile", "summarize"]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of already sorted values, nearest rank."""
    if not ordered:
        raise ValueError("percentile: no samples")
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarize(values: Sequence[float]) -> dict[str, float | int | None]:
    """``samples``, ``p50``, ``p99`` and ``max`` (None when there are no samples)."""
    ordered = sorted(values)
    if not ordered:
        return {"samples": 0, "p50": None, "p99": None, "max": None}
    return {
        "samples": len(ordered),
        "p50": round(percentile(ordered, 50), 3),
        "p99": round(percentile(ordered, 99), 3),
        "max": round(ordered[-1], 3),
    }
