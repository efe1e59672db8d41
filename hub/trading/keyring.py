"""The newest ``capacity`` keys, with a few integers each, and no Python object per key.

The hub remembers the last 10,000 of some things for about an hour at a time (outcomes of
``client_order_id`` commands, closed trades already handled). Kept as a dict of strings,
each entry is a few small objects made among a request's short-lived ones and freed an
hour later, oldest first: each such survivor keeps an allocator pool, and so its arena,
from being given back (docs/reliability.md, "What grew"). A ring keeps each key as a
16-byte digest (BLAKE2b: two keys sharing one is not a risk worth a thought) in buffers
allocated once: memory is the same after a minute and after a week.

A lookup searches the digests with ``bytearray.find``: ~30 µs for 10,000 keys, fine for
the commands and closes it serves.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator

__all__ = ["KeyRing"]

_WIDTH = 16
_EMPTY = bytes(_WIDTH)  # a free or forgotten slot (no key has this digest)


def _digest(key: str) -> bytes:
    return hashlib.blake2b(key.encode(), digest_size=_WIDTH).digest()


class KeyRing:
    """Up to ``capacity`` keys, oldest overwritten first, each with ``fields`` integers."""

    def __init__(self, capacity: int, fields: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: must be >= 1, got {capacity}")
        self.capacity = capacity
        self._digests = bytearray(capacity * _WIDTH)
        self._values = [array("q", bytes(8 * capacity)) for _ in range(fields)]
        self._added = 0  # keys ever added: the next slot is _added % capacity
        self._kept_from = 0  # keys added before this one were forgotten by expire()
        self._live = 0

    def __len__(self) -> int:
        return self._live

    def find(self, key: str) -> int | None:
        """The slot holding ``key``, or None."""
        needle = _digest(key)
        at = self._digests.find(needle)
        while at != -1 and at % _WIDTH:  # a match must start on a slot
            at = self._digests.find(needle, at + 1)
        return None if at == -1 else at // _WIDTH

    def add(self, key: str, *values: int) -> int:
        """Keep ``key`` (once: an earlier slot of it is forgotten); returns its slot."""
        if (old := self.find(key)) is not None:
            self.forget(old)
        slot = self._added % self.capacity
        self.forget(slot)  # the oldest, when full
        self._digests[slot * _WIDTH : (slot + 1) * _WIDTH] = _digest(key)
        for column, value in zip(self._values, values, strict=True):
            column[slot] = value
        self._added += 1
        self._live += 1
        return slot

    def forget(self, slot: int) -> None:
        span = slice(slot * _WIDTH, (slot + 1) * _WIDTH)
        if self._digests[span] != _EMPTY:
            self._digests[span] = _EMPTY
            self._live -= 1

    def value(self, slot: int, field: int) -> int:
        return self._values[field][slot]

    def set(self, slot: int, field: int, value: int) -> None:
        self._values[field][slot] = value

    def expire(self, field: int, cutoff: int) -> None:
        """Forget the oldest keys while their ``field`` is below ``cutoff`` (a time: keys
        are added in time order)."""
        n = max(self._kept_from, self._added - self.capacity)
        while n < self._added and self._values[field][slot := n % self.capacity] < cutoff:
            self.forget(slot)
            n += 1
        self._kept_from = n

    def slots(self) -> Iterator[int]:
        """Slots holding a key, oldest first."""
        first = max(self._kept_from, self._added - self.capacity)
        for n in range(first, self._added):
            slot = n % self.capacity
            if self._digests[slot * _WIDTH : (slot + 1) * _WIDTH] != _EMPTY:
                yield slot
