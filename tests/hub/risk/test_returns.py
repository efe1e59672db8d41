"""Rolling returns and their correlation (``hub.risk.returns``).

ReturnsWindow keeps returns incrementally and caches correlations: answers as from scratch.
Series are per bridge (agent): quotes of one symbol from two bridges are never mixed.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.risk import ReturnsWindow
from tests.hub.risk.builders import feed, walks

BRIDGE = "agent_1"  # the bridge every series below comes from (feed's default)


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
        window.observe(BRIDGE, symbol, mid, mid, bucket * 1000 + 5)
        ticks.append((symbol, mid, bucket))
        expected = reference(ticks, "A", "B", 12, 3)
        got = window.correlation(BRIDGE, "A", "B")
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
            window.observe(
                BRIDGE, symbol, mids[symbol], mids[symbol], step * 250
            )  # 4 ticks a bucket
        first = window.correlation(BRIDGE, "EURUSD", "GBPUSD")
        again = window.correlation(BRIDGE, "EURUSD", "GBPUSD")  # served from the cache
        assert first == again == window.recompute(BRIDGE, "EURUSD", "GBPUSD")
        checked += first is not None
    assert checked > 500


def test_a_tick_in_the_open_bucket_invalidates_the_cache() -> None:
    window = ReturnsWindow(10, min_samples=3)
    for i, price in enumerate([1.0, 2.0, 1.0, 2.0, 1.0]):
        window.observe(BRIDGE, "A", price, price, i * 1000)
        window.observe(BRIDGE, "B", price * 3, price * 3, i * 1000)
    assert window.correlation(BRIDGE, "A", "B") == pytest.approx(1.0)
    window.observe(BRIDGE, "B", 9.0, 9.0, 4 * 1000 + 500)  # B's last return flips sign
    assert window.correlation(BRIDGE, "A", "B") == pytest.approx(window.recompute(BRIDGE, "A", "B"))
    assert window.correlation(BRIDGE, "A", "B") != pytest.approx(1.0)


@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [
        ("EURUSD", "GBPUSD", 0.8, 1.0),
        ("GBPUSD", "EURUSD", 0.8, 1.0),
        ("EURUSD", "USDCHF", -1.0, -0.8),
        ("EURUSD", "XAUUSD", -0.4, 0.4),
    ],
)
def test_correlation_of_synthetic_series(a: str, b: str, low: float, high: float) -> None:
    window = ReturnsWindow(120)
    feed(window, walks(300))
    corr = window.correlation(BRIDGE, a, b)
    assert corr is not None and low <= corr <= high, corr


def test_correlation_is_none_until_enough_samples() -> None:
    window = ReturnsWindow(120, min_samples=10)
    data = walks(11)
    feed(window, {k: v[:10] for k, v in data.items()})  # 9 returns
    assert window.correlation(BRIDGE, "EURUSD", "GBPUSD") is None
    feed(window, data)  # 10 returns
    assert window.correlation(BRIDGE, "EURUSD", "GBPUSD") is not None


def test_correlation_with_an_unseen_symbol_is_none() -> None:
    window = ReturnsWindow(120, min_samples=10)
    feed(window, walks(11))
    assert window.correlation(BRIDGE, "EURUSD", "NZDUSD") is None


def test_flat_series_has_no_correlation() -> None:
    window = ReturnsWindow(20, min_samples=5)
    feed(window, {"EURUSD": [1.08] * 30, "GBPUSD": walks(30)["GBPUSD"]})
    assert window.correlation(BRIDGE, "EURUSD", "GBPUSD") is None


def alternating() -> ReturnsWindow:
    """A and B alternate in step over buckets 0-4, B at three times A; B's first tick in
    each bucket is overwritten by a later one."""
    window = ReturnsWindow(10, min_samples=3)
    for i, price in enumerate([1.0, 2.0, 1.0, 2.0, 1.0]):
        window.observe(BRIDGE, "A", price, price, i * 1000)
        window.observe(BRIDGE, "B", 9.0, 9.0, i * 1000)  # overwritten below within the same bucket
        window.observe(BRIDGE, "B", price * 3, price * 3, i * 1000 + 999)
    return window


def test_last_tick_in_a_bucket_wins() -> None:
    assert alternating().correlation(BRIDGE, "A", "B") == pytest.approx(1.0)


def test_buckets_without_a_tick_repeat_the_last_price() -> None:
    window = alternating()
    # A skips buckets 5-7: they must repeat 1.0 to stay aligned with B, which reports each.
    window.observe(BRIDGE, "A", 4.0, 4.0, 8000)
    for bucket, price in [(5, 3.0), (6, 3.0), (7, 3.0), (8, 12.0)]:
        window.observe(BRIDGE, "B", price, price, bucket * 1000)
    assert window.correlation(BRIDGE, "A", "B") == pytest.approx(1.0)


def test_late_ticks_are_ignored() -> None:
    window = ReturnsWindow(10, min_samples=3)
    feed(window, {"A": [1.0, 2.0, 1.0, 2.0], "B": [1.0, 2.0, 1.0, 2.0]})
    window.observe(BRIDGE, "A", 50.0, 50.0, 0)
    assert window.correlation(BRIDGE, "A", "B") == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": 1}, "size"),
        ({"size": 10, "bucket_ms": 0}, "bucket_ms"),
        ({"size": 10, "min_samples": 11}, "min_samples"),
    ],
)
def test_window_rejects_bad_parameters(kwargs: dict[str, int], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        ReturnsWindow(**kwargs)


def test_window_rejects_bad_prices() -> None:
    with pytest.raises(ValueError, match="bid/ask"):
        ReturnsWindow(10).observe(BRIDGE, "A", math.nan, 1.0, 0)


# -- one series per bridge ----------------------------------------------------------------


def test_quotes_of_one_symbol_from_another_bridge_never_enter_this_bridges_series() -> None:
    data = walks(200)
    alone, shared = ReturnsWindow(120), ReturnsWindow(120)
    feed(alone, data)
    noise = random.Random(5)
    for i in range(200):  # agent_2 quotes EURUSD too, later in each second, at its own prices
        for symbol in ("EURUSD", "GBPUSD"):
            price = data[symbol][i]
            shared.observe(BRIDGE, symbol, price, price + 0.0001, i * 1000 + 123)
        other = 1.08 * math.exp(noise.gauss(0, 0.001))
        shared.observe("agent_2", "EURUSD", other, other, i * 1000 + 500)
    mine = shared.correlation(BRIDGE, "EURUSD", "GBPUSD")
    assert mine is not None and mine > 0.8
    assert mine == alone.correlation(BRIDGE, "EURUSD", "GBPUSD")
    assert shared.correlation("agent_2", "EURUSD", "GBPUSD") is None  # agent_2 has no GBPUSD


def test_each_bridge_has_its_own_correlation_and_cache_entry() -> None:
    data = walks(200)
    window = ReturnsWindow(120)
    feed(window, {"EURUSD": data["EURUSD"], "GBPUSD": data["GBPUSD"]})
    feed(window, {"EURUSD": data["EURUSD"], "GBPUSD": data["USDCHF"]}, agent_id="agent_2")
    for _ in range(2):  # computed, then served from the cache
        one = window.correlation(BRIDGE, "EURUSD", "GBPUSD")
        two = window.correlation("agent_2", "EURUSD", "GBPUSD")
        assert one is not None and one > 0.8
        assert two is not None and two < -0.8
        assert (one, two) == (
            window.recompute(BRIDGE, "EURUSD", "GBPUSD"),
            window.recompute("agent_2", "EURUSD", "GBPUSD"),
        )


def test_an_unknown_bridge_has_no_correlation() -> None:
    window = ReturnsWindow(120)
    feed(window, walks(50))
    assert window.correlation("agent_9", "EURUSD", "GBPUSD") is None
