"""Time in tests: constants as multiples of one unit scaled by HUB_TEST_TIME_FACTOR, and
:func:`eventually`, the one way to wait for a condition."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["UNIT", "eventually", "units"]

UNIT = 0.1 * float(os.environ.get("HUB_TEST_TIME_FACTOR", "1"))

T = TypeVar("T")


def units(n: float) -> float:
    """``n`` time units in seconds."""
    return n * UNIT


async def eventually(
    check: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = units(50),
    interval: float = units(0.1),
    message: str = "the condition",
) -> T:
    """Call ``check()`` every ``interval`` s until it returns a truthy value, and return it.

    ``check`` may be a plain function or a coroutine function (its result is awaited).
    After ``timeout`` s it fails with an AssertionError naming ``message`` and the last
    value seen. Whatever ``check`` raises propagates at once.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {message}; last value: {value!r}"
            )
        await asyncio.sleep(interval)
