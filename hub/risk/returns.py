"""Rolling returns per symbol on a fixed time grid, and their correlation."""

from __future__ import annotations

import math
from collections import deque
from itertools import islice, pairwise

__all__ = ["ReturnsWindow"]


class _Series:
    __slots__ = ("last_bucket", "prices")

    def __init__(self, bucket: int, price: float, size: int) -> None:
        self.last_bucket = bucket
        self.prices: deque[float] = deque([price], maxlen=size + 1)

    @property
    def first_bucket(self) -> int:
        return self.last_bucket - len(self.prices) + 1


class ReturnsWindow:
    """Mid prices sampled on a grid of ``bucket_ms`` buckets (last value per bucket).

    Each symbol keeps its last ``size + 1`` bucket prices (``size`` log returns);
    buckets without a tick repeat the previous price. Ticks older than a symbol's
    latest bucket are ignored. :meth:`correlation` is the Pearson correlation of two
    symbols' log returns over the buckets both cover; it is None until at least
    ``min_samples`` common returns exist or while either series is flat, and the
    risk engine lets a trade pass while it is None.
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
        self._series: dict[str, _Series] = {}

    def observe(self, symbol: str, bid: float, ask: float, now_ms: int) -> None:
        mid = (bid + ask) / 2
        if not (math.isfinite(mid) and mid > 0):
            raise ValueError(f"bid/ask: must be positive prices, got {bid}/{ask} for {symbol}")
        bucket = now_ms // self._bucket_ms
        series = self._series.get(symbol)
        if series is None:
            self._series[symbol] = _Series(bucket, mid, self._size)
            return
        gap = bucket - series.last_bucket
        if gap < 0:
            return
        if gap == 0:
            series.prices[-1] = mid
            return
        series.prices.extend([series.prices[-1]] * min(gap - 1, self._size))
        series.prices.append(mid)
        series.last_bucket = bucket

    def correlation(self, a: str, b: str) -> float | None:
        sa, sb = self._series.get(a), self._series.get(b)
        if sa is None or sb is None:
            return None
        start = max(sa.first_bucket, sb.first_bucket)
        end = min(sa.last_bucket, sb.last_bucket)
        if end - start < self._min_samples:
            return None
        ra = _log_returns(_window(sa, start, end))
        rb = _log_returns(_window(sb, start, end))
        return _pearson(ra, rb)


def _window(series: _Series, start: int, end: int) -> list[float]:
    offset = start - series.first_bucket
    return list(islice(series.prices, offset, offset + end - start + 1))


def _log_returns(prices: list[float]) -> list[float]:
    return [math.log(b / a) for a, b in pairwise(prices)]


def _pearson(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx <= 0 or syy <= 0:
        return None
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
