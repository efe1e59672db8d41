"""``client_order_id`` idempotency: a repeat returns the first result, never trades twice.

A repeat that arrives while the first is still in flight waits for the same outcome. The
same id with a different payload is a ``duplicate`` (409). Bounded: the oldest decided
entries are forgotten past ``capacity`` or after ``ttl`` (a day).

With a ``path`` (one hub process: a file in the data dir), every decided outcome is
appended to a log and read back at start, so a repeat after a restart still gets the first
outcome, and a different payload still gets 409. The log is rewritten when it holds twice
``capacity`` lines.
"""

from __future__ import annotations

import asyncio
import hashlib
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


_NULL = msgspec.Raw(b"null")


class _Logged(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A decided outcome: a line of the log, and the entry kept in memory for its key."""

    key: str
    fp: str  # digest of the payload (a log written before digests holds the payload itself)
    at: int
    result: msgspec.Raw = _NULL  # the result's JSON, decoded again for each repeat
    error: dict[str, Any] | None = None


_decode = msgspec.json.Decoder(_Logged).decode


def _digest(fp: bytes) -> str:
    """A payload fingerprint, shortened: 32 hex characters (BLAKE2b, 128 bits)."""
    return hashlib.blake2b(fp, digest_size=16).hexdigest()


_HEX = frozenset("0123456789abcdef")


def _stored_digest(fp: str) -> str:
    return fp if len(fp) == 32 and set(fp) <= _HEX else _digest(fp.encode())


class IdempotencyCache:
    """Outcomes by key: a future while the first attempt runs, then its :class:`_Logged`
    line.

    Bounded: at most ``capacity`` entries (the oldest decided ones are forgotten first;
    in-flight ones are never dropped, and there are at most as many as commands running),
    each forgotten ``ttl_ms`` after its outcome. A decided entry is its log line: the result's
    JSON and a payload digest, never the exception or its traceback (they hold the frames
    of the command that failed). One ``bytes`` object, decoded again for a repeat: not a
    struct and its strings, whose thousands of small objects, living an hour each, pinned
    the allocator's arenas among short-lived ones (docs/reliability.md, "What grew").
    """

    def __init__(
        self, capacity: int = 10_000, *, path: Path | None = None, ttl_ms: int = 86_400_000
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: must be >= 1, got {capacity}")
        self.capacity = capacity
        self.ttl_ms = ttl_ms
        self._entries: OrderedDict[str, tuple[str, asyncio.Future[Any]] | bytes] = OrderedDict()
        self._path = path
        self._lines = 0  # lines in the log file: rewritten past 2 x capacity
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            lines = path.read_bytes().splitlines()
        except FileNotFoundError:
            return
        self._lines = len(lines)
        oldest = now_ms() - self.ttl_ms
        for line in lines:
            try:
                entry = _decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.warning("idempotency_log_line_skipped path=%s line=%r", path, line[:80])
                continue  # a torn last line after a crash: that outcome was never answered
            if entry.at >= oldest:
                if entry.fp != (fp := _stored_digest(entry.fp)):
                    line = msgspec.json.encode(msgspec.structs.replace(entry, fp=fp))
                self._entries.pop(entry.key, None)
                self._entries[entry.key] = line
        self._trim()

    def _decided(self, entry: _Logged) -> None:
        line = self._entries[entry.key] = msgspec.json.encode(entry)
        if self._path is None:
            return
        self._lines += 1
        if self._lines > 2 * self.capacity:
            # Line by line: one kept entry's bytes at a time, never the whole log in memory
            # (10 000 lines: ~6.5 MB the allocator would keep after each rewrite).
            tmp = self._path.with_suffix(".tmp")
            self._lines = 0
            with tmp.open("wb") as fh:
                for e in self._entries.values():
                    if isinstance(e, bytes):
                        fh.write(e + b"\n")
                        self._lines += 1
            os.replace(tmp, self._path)
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Not fsynced: the log serves exact replays; should the machine lose its last lines,
        # a repeat is still matched against the order the bridge holds (its tag).
        with open(self._path, "ab") as fh:
            fh.write(line + b"\n")

    def __len__(self) -> int:
        return len(self._entries)

    def in_flight(self) -> int:
        """Entries whose first attempt has not decided yet."""
        return sum(1 for e in self._entries.values() if not isinstance(e, bytes))

    async def run(
        self, order: OrderKey | None, payload: Any, action: Callable[[], Awaitable[Any]]
    ) -> tuple[Any, bool]:
        """Run ``action`` once per ``key``; returns (result, replayed).

        A ``HubError`` outcome is remembered and re-raised for repeats, like a result.
        """
        if order is None:
            return await action(), False
        key = "\x1f".join(order)
        fp = _digest(fingerprint(payload))
        entry = self._entries.get(key)
        if isinstance(entry, bytes):
            logged = _decode(entry)
            if logged.fp != fp:
                raise duplicate(order)
            if logged.error is not None:
                err = logged.error
                raise HubError(err["code"], err["message"], err.get("details"))
            return msgspec.json.decode(logged.result), True
        if entry is not None:
            if entry[0] != fp:
                raise duplicate(order)
            return await asyncio.shield(entry[1]), True
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._entries[key] = (fp, future)
        try:
            result = await action()
        except HubError as exc:
            # Waiting repeats get a copy: the raised one carries this command's frames.
            future.set_exception(HubError(exc.code, exc.message, exc.details))
            future.exception()  # retrieved: repeats re-raise it, nobody else has to
            if exc.code == "duplicate":  # the id belongs to an earlier order, not to this one
                self._entries.pop(key, None)
            else:
                self._decided(_Logged(key=key, fp=fp, at=now_ms(), error=exc.body()["error"]))
                self._trim()
            raise
        except BaseException as exc:
            # Not a decided outcome (a bug or cancellation): forget it so a retry may run.
            self._entries.pop(key, None)
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            future.exception()
            raise
        future.set_result(result)
        raw = msgspec.Raw(msgspec.json.encode(result))
        self._decided(_Logged(key=key, fp=fp, at=now_ms(), result=raw))
        self._trim()
        return result, False

    def _trim(self) -> None:
        """Forget decided entries past ``capacity`` or older than ``ttl_ms``, oldest first."""
        oldest = now_ms() - self.ttl_ms
        excess = len(self._entries) - self.capacity
        drop = []
        for key, entry in self._entries.items():
            if not isinstance(entry, bytes):
                continue  # in flight: never dropped
            if excess <= 0 and _decode(entry).at >= oldest:
                break
            drop.append(key)
            excess -= 1
        for key in drop:
            del self._entries[key]
