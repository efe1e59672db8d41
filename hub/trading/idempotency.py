"""``client_order_id`` idempotency: a repeat returns the first result, never trades twice.

A repeat that arrives while the first is still in flight waits for the same outcome. The
same id with a different payload is a ``duplicate`` (409). Bounded: the oldest finished
entries are forgotten past ``capacity`` or after ``ttl`` (a day).

With a ``path`` (one hub process: a file in the data dir), every decided outcome is
appended to a log and read back at start, so a repeat after a restart still gets the first
outcome, and a different payload still gets 409. The log is rewritten when it holds twice
``capacity`` lines.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from channels.clock import now_ms
from hub.errors import HubError

log = logging.getLogger("mt4hub.trading")

__all__ = ["IdempotencyCache", "OrderKey", "duplicate", "fingerprint"]

OrderKey = tuple[str, str]  # (agent, client_order_id): ids are per agent

_encode = msgspec.json.Encoder(order="sorted").encode


def duplicate(key: OrderKey) -> HubError:
    agent, coid = key
    return HubError(
        "duplicate",
        f"client_order_id {coid!r} was already used on {agent} with a different request",
        {"client_order_id": coid, "agent": agent},
    )


def fingerprint(payload: Any) -> bytes:
    """Canonical bytes of a command payload (key order independent)."""
    return _encode(payload)


class _Logged(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    key: str
    fp: str
    at: int
    result: Any = None
    error: dict[str, Any] | None = None


class IdempotencyCache:
    def __init__(
        self, capacity: int = 10_000, *, path: Path | None = None, ttl_ms: int = 86_400_000
    ) -> None:
        self.capacity = capacity
        self.ttl_ms = ttl_ms
        self._entries: OrderedDict[str, tuple[bytes, asyncio.Future[Any]]] = OrderedDict()
        self._path = path
        self._logged: list[_Logged] = []
        self._restored: dict[str, _Logged] = {}  # read back at start, not used yet
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            lines = path.read_bytes().splitlines()
        except FileNotFoundError:
            return
        oldest = now_ms() - self.ttl_ms
        for line in lines:
            try:
                entry = msgspec.json.decode(line, type=_Logged)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.warning("idempotency_log_line_skipped path=%s line=%r", path, line[:80])
                continue  # a torn last line after a crash: that outcome was never answered
            if entry.at >= oldest:
                self._logged.append(entry)
        self._logged = self._logged[-self.capacity :]
        self._restored = {e.key: e for e in self._logged}

    def _restore(self, key: str) -> None:
        """An outcome from before a restart, as a done future (made on first use: a loop)."""
        entry = self._restored.pop(key, None)
        if entry is None or key in self._entries:
            return
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if entry.error is not None:
            err = entry.error
            future.set_exception(HubError(err["code"], err["message"], err.get("details")))
            future.exception()
        else:
            future.set_result(entry.result)
        self._entries[entry.key] = (entry.fp.encode(), future)

    def _append(self, key: str, fp: bytes, result: Any = None, error: Any = None) -> None:
        if self._path is None:
            return
        entry = _Logged(key=key, fp=fp.decode(), at=now_ms(), result=result, error=error)
        self._logged.append(entry)
        if len(self._logged) > 2 * self.capacity:
            self._logged = self._logged[-self.capacity :]
            tmp = self._path.with_suffix(".tmp")
            tmp.write_bytes(b"".join(msgspec.json.encode(e) + b"\n" for e in self._logged))
            os.replace(tmp, self._path)
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Not fsynced: the log serves exact replays; should the machine lose its last lines,
        # a repeat is still matched against the order the bridge holds (its tag).
        with open(self._path, "ab") as fh:
            fh.write(msgspec.json.encode(entry) + b"\n")

    def __len__(self) -> int:
        return len(self._entries)

    async def run(
        self, order: OrderKey | None, payload: Any, action: Callable[[], Awaitable[Any]]
    ) -> tuple[Any, bool]:
        """Run ``action`` once per ``key``; returns (result, replayed).

        A ``HubError`` outcome is remembered and re-raised for repeats, like a result.
        """
        if order is None:
            return await action(), False
        key = "\x1f".join(order)
        fp = fingerprint(payload)
        self._restore(key)
        entry = self._entries.get(key)
        if entry is not None:
            if entry[0] != fp:
                raise duplicate(order)
            return await asyncio.shield(entry[1]), True
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._entries[key] = (fp, future)
        self._trim()
        try:
            result = await action()
        except HubError as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: repeats re-raise it, nobody else has to
            if exc.code == "duplicate":  # the id belongs to an earlier order, not to this one
                self._entries.pop(key, None)
            else:
                self._append(key, fp, error=exc.body()["error"])
            raise
        except BaseException as exc:
            # Not a decided outcome (a bug or cancellation): forget it so a retry may run.
            self._entries.pop(key, None)
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            future.exception()
            raise
        future.set_result(result)
        self._append(key, fp, result=result)
        return result, False

    def _trim(self) -> None:
        while len(self._entries) > self.capacity:
            key, (_, fut) = next(iter(self._entries.items()))
            if not fut.done():
                break
            del self._entries[key]
