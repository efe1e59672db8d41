"""The one wall clock of the hub: epoch milliseconds, as every ``ts`` and ``time`` field."""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    """Wall-clock time now, in epoch milliseconds."""
    return time.time_ns() // 1_000_000
