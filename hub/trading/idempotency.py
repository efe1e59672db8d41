"""``client_order_id`` idempotency: a repeat returns the first result, never trades twice.

A repeat that arrives while the first is still in flight waits for the same outcome. The
same id with a different payload is a ``duplicate`` (409). Bounded: the oldest finished
entries are forgotten past ``capacity`` (the records store is the long-term memory).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from hub.errors import HubError

__all__ = ["IdempotencyCache", "fingerprint"]

_encode = msgspec.json.Encoder(order="sorted").encode


def fingerprint(payload: Any) -> bytes:
    """Canonical bytes of a command payload (key order independent)."""
    return _encode(payload)


class IdempotencyCache:
    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[bytes, asyncio.Future[Any]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def run(
        self, key: str | None, payload: Any, action: Callable[[], Awaitable[Any]]
    ) -> tuple[Any, bool]:
        """Run ``action`` once per ``key``; returns (result, replayed).

        A ``HubError`` outcome is remembered and re-raised for repeats, like a result.
        """
        if key is None:
            return await action(), False
        fp = fingerprint(payload)
        entry = self._entries.get(key)
        if entry is not None:
            if entry[0] != fp:
                raise HubError(
                    "duplicate",
                    f"client_order_id {key!r} was already used with a different request",
                    {"client_order_id": key},
                )
            return await asyncio.shield(entry[1]), True
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._entries[key] = (fp, future)
        self._trim()
        try:
            result = await action()
        except HubError as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: repeats re-raise it, nobody else has to
            raise
        except BaseException as exc:
            # Not a decided outcome (a bug or cancellation): forget it so a retry may run.
            self._entries.pop(key, None)
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            future.exception()
            raise
        future.set_result(result)
        return result, False

    def _trim(self) -> None:
        while len(self._entries) > self.capacity:
            key, (_, fut) = next(iter(self._entries.items()))
            if not fut.done():
                break
            del self._entries[key]
