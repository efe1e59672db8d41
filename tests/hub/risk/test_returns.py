"""ReturnsWindow keeps returns incrementally and caches correlations: answers as from scratch."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.risk import ReturnsWindow


def reference(
    ticks: list[tuple[str, float, int]], a: str, b: str, size: int, min_n: int
) -> float | None:
    """The correlation straight from the definition: bucket mids, gaps repeat, log returns."""
    buckets: dict[str, dict[int, float]] = defaultdict(dict)
    for symbol, mid, bucket in ticks:
        seen = buckets[symbol]
        if seen and bucket < max(seen):
            continue
        seen[bucket] = mid
    if a not in buckets or b not in buckets:
        return None
    grids: dict[str, dict[int, float]] = {}
    for symbol in (a, b):
        seen = buckets[symbol]
        first, last = min(seen), max(seen)
        grid, price = {}, seen[first]
        for bucket in range(first, last + 1):
            price = seen.get(bucket, price)
            grid[bucket] = price
        grids[symbol] = {k: v for k, v in grid.items() if k > last - size - 1}
    start = max(min(grids[a]), min(grids[b]))
    end = min(max(grids[a]), max(grids[b]))
    if end - start < min_n:
        return None
    xs = [math.log(q / p) for p, q in pairwise(grids[a][k] for k in range(start, end + 1))]
    ys = [math.log(q / p) for p, q in pairwise(grids[b][k] for k in range(start, end + 1))]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


tick = st.tuples(
    st.sampled_from(["A", "B"]),
    st.floats(min_value=0.5, max_value=2.0),
    st.integers(min_value=0, max_value=4),  # buckets to move on (0: same bucket)
)


@settings(max_examples=200, deadline=None)
@given(st.lists(tick, min_size=1, max_size=80))
def test_incremental_returns_match_the_definition(steps: list[tuple[str, float, int]]) -> None:
    window = ReturnsWindow(12, min_samples=3)
    ticks: list[tuple[str, float, int]] = []
    bucket = 0
    for symbol, mid, move in steps:
        bucket += move
        window.observe(symbol, mid, mid, bucket * 1000 + 5)
        ticks.append((symbol, mid, bucket))
        expected = reference(ticks, "A", "B", 12, 3)
        got = window.correlation("A", "B")
        if expected is None:
            assert got is None
        else:
            assert got == pytest.approx(expected, abs=1e-9)


def test_the_cached_value_equals_the_recomputed_one_as_ticks_arrive() -> None:
    rng = random.Random(3)
    window = ReturnsWindow(120)
    mids = {"EURUSD": 1.08, "GBPUSD": 1.27}
    checked = 0
    for step in range(600):
        shock = rng.gauss(0, 0.0005)
        for symbol in mids:
            mids[symbol] *= math.exp(shock + rng.gauss(0, 0.0002))
            window.observe(symbol, mids[symbol], mids[symbol], step * 250)  # 4 ticks a bucket
        first = window.correlation("EURUSD", "GBPUSD")
        again = window.correlation("EURUSD", "GBPUSD")  # served from the cache
        assert first == again == window.recompute("EURUSD", "GBPUSD")
        checked += first is not None
    assert checked > 500


def test_a_tick_in_the_open_bucket_invalidates_the_cache() -> None:
    window = ReturnsWindow(10, min_samples=3)
    for i, price in enumerate([1.0, 2.0, 1.0, 2.0, 1.0]):
        window.observe("A", price, price, i * 1000)
        window.observe("B", price * 3, price * 3, i * 1000)
    assert window.correlation("A", "B") == pytest.approx(1.0)
    window.observe("B", 9.0, 9.0, 4 * 1000 + 500)  # B's last return flips sign
    assert window.correlation("A", "B") == pytest.approx(window.recompute("A", "B"))
    assert window.correlation("A", "B") != pytest.approx(1.0)
