"""Which order tags a bridge's history holds, without reading a whole day of it per trade.

Before a trade with a ``client_order_id`` the hub asks whether the bridge already has the
order (sent before a restart, or by another instance): its positions, then its history of
the last day. Read whole each time, that history grows with every trade of the day (at
10,000 trades an hour, megabytes per trade). The index reads it whole once, then only
what closed since the newest close it has seen, less a margin for a bridge that shows a
close late. It answers "surely not" or "maybe"; a maybe (the order is there, or two tags
share a 64-bit hash) is settled by the exact search of the whole day, as before.

Each closed trade costs 16 bytes (its key's hash and its close time), kept oldest first
and dropped once older than the window: about 4 MB for a day at 10,000 trades an hour.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Hashable, Iterable

__all__ = ["MARGIN_MS", "TagIndex"]

MARGIN_MS = 300_000  # re-read the last 5 minutes: a close the bridge shows late still counts
_KEY = struct.Struct("<q")


def _packed(key: Hashable) -> bytes:
    return _KEY.pack(hash(key))  # this process's hash: the index is never stored


class TagIndex:
    def __init__(self, window_ms: int, margin_ms: int = MARGIN_MS) -> None:
        self.window_ms = window_ms
        self.margin_ms = margin_ms
        self.newest: int | None = None  # the newest close time indexed
        self._keys = bytearray()  # 8 bytes a row, oldest first
        self._times = array("q")  # each row's close time
        self._recent: dict[tuple[int, int], None] = {}  # rows within the margin: not twice

    def __len__(self) -> int:
        return len(self._times)

    def since(self, now_ms: int) -> int:
        """Where the next read starts: the whole window at first, then the newest close
        seen less the margin."""
        start = now_ms - self.window_ms
        return start if self.newest is None else max(start, self.newest - self.margin_ms)

    def add(self, since: int, rows: Iterable[tuple[int, int, Hashable]]) -> None:
        """Index ``(ticket, close time, key)`` rows of a read that started at ``since``
        (older rows, from a bridge that ignores ``since``, are already in or expired)."""
        for ticket, closed, key in rows:
            if closed < since or (ticket, closed) in self._recent:
                continue
            self._recent[(ticket, closed)] = None
            self._keys += _packed(key)
            self._times.append(closed)
            if self.newest is None or closed > self.newest:
                self.newest = closed
        if self.newest is not None:
            edge = self.newest - self.margin_ms
            self._recent = {k: None for k in self._recent if k[1] >= edge}

    def expire(self, now_ms: int) -> None:
        """Drop the rows closed before the window (kept in read order: close times may
        interleave a little, and a row is then dropped a little late, never early)."""
        cutoff = now_ms - self.window_ms
        n = 0
        while n < len(self._times) and self._times[n] < cutoff:
            n += 1
        if n:
            del self._keys[: n * _KEY.size]
            del self._times[:n]

    def may_hold(self, key: Hashable) -> bool:
        needle = _packed(key)
        at = self._keys.find(needle)
        while at != -1 and at % _KEY.size:  # a match must start on a row
            at = self._keys.find(needle, at + 1)
        return at != -1
