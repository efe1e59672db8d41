"""Rolling returns per bridge and symbol on a fixed time grid, and their correlation.

A series belongs to one agent's bridge: quotes of one symbol from two bridges (brokers
differ, and so do their clocks) are never mixed, and a correlation is measured between
two series of the same bridge. Each series keeps its log returns next to its prices,
updated as buckets close (one ``math.log`` per bucket, plus the still-open last bucket's
return on every tick), and :meth:`ReturnsWindow.correlation` memoises its answer per
bridge and pair, keyed by both series' version (bumped on every observed change). A risk
check between ticks therefore costs a dict lookup; after a tick, one Pearson pass over
the ready-made returns.
"""

from __future__ import annotations

import math
from collections import deque
from itertools import islice
from operator import mul

__all__ = ["ReturnsWindow"]


class _Series:
    __slots__ = ("last_bucket", "prices", "returns", "version")

    def __init__(self, bucket: int, price: float, size: int) -> None:
        self.last_bucket = bucket
        self.prices: deque[float] = deque([price], maxlen=size + 1)
        self.returns: deque[float] = deque(maxlen=size)  # returns[i] = log(prices[i+1]/prices[i])
        self.version = 0

    @property
    def first_bucket(self) -> int:
        return self.last_bucket - len(self.prices) + 1

    def set_last(self, price: float) -> None:
        """Replace the open bucket's price (a later tick in the same bucket)."""
        prices = self.prices
        if prices[-1] == price:
            return
        prices[-1] = price
        if self.returns:
            self.returns[-1] = math.log(price / prices[-2])
        self.version += 1

    def close_buckets(self, gap: int, price: float, size: int) -> None:
        """Move ``gap`` buckets on: the skipped ones repeat the last price, then ``price``."""
        prices, returns = self.prices, self.returns
        repeats = min(gap - 1, size)
        if repeats:
            prices.extend([prices[-1]] * repeats)
            returns.extend([0.0] * repeats)
        returns.append(math.log(price / prices[-1]))
        prices.append(price)
        self.last_bucket += gap
        self.version += 1


class _Bridge:
    """One bridge's series by symbol, and its correlations cached per pair with the two
    series' versions they were computed at."""

    __slots__ = ("cache", "series")

    def __init__(self) -> None:
        self.series: dict[str, _Series] = {}
        self.cache: dict[tuple[str, str], tuple[int, int, float | None]] = {}


class ReturnsWindow:
    """Mid prices sampled on a grid of ``bucket_ms`` buckets (last value per bucket).

    Series are per agent (bridge) and symbol: a bridge's quotes only ever enter its own.
    Each keeps its last ``size + 1`` bucket prices (``size`` log returns); buckets without
    a tick repeat the previous price. Ticks older than a series' latest bucket are
    ignored. :meth:`correlation` is the Pearson correlation of two symbols' log returns on
    one bridge over the buckets both cover; it is None until at least ``min_samples``
    common returns exist or while either series is flat, and the risk engine lets a trade
    pass while it is None.
    """

    def __init__(self, size: int, *, bucket_ms: int = 1000, min_samples: int = 10) -> None:
        if size < 2:
            raise ValueError(f"size: must be >= 2, got {size}")
        if bucket_ms < 1:
            raise ValueError(f"bucket_ms: must be >= 1, got {bucket_ms}")
        if not 2 <= min_samples <= size:
            raise ValueError(f"min_samples: must be between 2 and size ({size}), got {min_samples}")
        self._size = size
        self._bucket_ms = bucket_ms
        self._min_samples = min_samples
        self._bridges: dict[str, _Bridge] = {}  # agent id -> its series and cached pairs

    def observe(self, agent_id: str, symbol: str, bid: float, ask: float, now_ms: int) -> None:
        """A quote of ``symbol`` read from ``agent_id``'s bridge at ``now_ms``."""
        mid = (bid + ask) / 2
        if not (math.isfinite(mid) and mid > 0):
            raise ValueError(
                f"bid/ask: must be positive prices, got {bid}/{ask} for {symbol} of {agent_id}"
            )
        bucket = now_ms // self._bucket_ms
        bridge = self._bridges.get(agent_id)
        if bridge is None:
            bridge = self._bridges[agent_id] = _Bridge()
        series = bridge.series.get(symbol)
        if series is None:
            bridge.series[symbol] = _Series(bucket, mid, self._size)
            return
        gap = bucket - series.last_bucket
        if gap < 0:
            return
        if gap == 0:
            series.set_last(mid)
        else:
            series.close_buckets(gap, mid, self._size)

    def correlation(self, agent_id: str, a: str, b: str) -> float | None:
        """Correlation of ``a`` and ``b`` as quoted by ``agent_id``'s bridge; None while
        unknown (either series missing, too few common returns, or flat)."""
        bridge = self._bridges.get(agent_id)
        if bridge is None:
            return None
        sa, sb = bridge.series.get(a), bridge.series.get(b)
        if sa is None or sb is None:
            return None
        cache = bridge.cache
        cached = cache.get((a, b))
        if cached is not None and cached[0] == sa.version and cached[1] == sb.version:
            return cached[2]
        value = self.recompute(agent_id, a, b)
        if len(cache) > 4096:  # symbols are few; a bound all the same
            cache.clear()
        cache[(a, b)] = (sa.version, sb.version, value)
        return value

    def recompute(self, agent_id: str, a: str, b: str) -> float | None:
        """:meth:`correlation` without the cache (tests compare the two)."""
        bridge = self._bridges.get(agent_id)
        if bridge is None:
            return None
        sa, sb = bridge.series.get(a), bridge.series.get(b)
        if sa is None or sb is None:
            return None
        start = max(sa.first_bucket, sb.first_bucket)
        end = min(sa.last_bucket, sb.last_bucket)
        if end - start < self._min_samples:
            return None
        return _pearson(_window(sa, start, end), _window(sb, start, end))


def _window(series: _Series, start: int, end: int) -> list[float]:
    """The returns of buckets ``start+1 .. end`` (each against its previous bucket)."""
    offset = start - series.first_bucket
    return list(islice(series.returns, offset, offset + end - start))


def _pearson(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    dx = [x - mx for x in xs]
    dy = [y - my for y in ys]
    sxx = sum(map(mul, dx, dx))
    syy = sum(map(mul, dy, dy))
    if sxx <= 0 or syy <= 0:
        return None
    sxy: float = sum(map(mul, dx, dy))
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
