"""``client_order_id`` idempotency: a repeat returns the first result, never trades twice.

A repeat that arrives while the first is still in flight waits for the same outcome. The
same id with a different payload is a ``duplicate`` (409). Bounded: the oldest decided
entries are forgotten past ``capacity`` or after ``ttl`` (a day).

Every decided outcome is appended to a log (one hub process: a file in the data dir) and
read back at start, so a repeat after a restart still gets the first outcome, and a
different payload still gets 409. The log is rewritten when it holds twice ``capacity``
lines.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from array import array
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from channels.clock import now_ms
from hub.errors import HubError
from hub.trading.keyring import KeyRing

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
_START, _END, _AT = 0, 1, 2  # a decided outcome's fields in the ring: its line, its time


def _digest(fp: bytes) -> str:
    """A payload fingerprint, shortened: 32 hex characters (BLAKE2b, 128 bits)."""
    return hashlib.blake2b(fp, digest_size=16).hexdigest()


_HEX = frozenset("0123456789abcdef")


def _stored_digest(fp: str) -> str:
    return fp if len(fp) == 32 and set(fp) <= _HEX else _digest(fp.encode())


class IdempotencyCache:
    """Outcomes by key: a future while the first attempt runs, then its line in the log.

    Every decided outcome is a line of the log at ``path``: its result's JSON and a payload
    digest, never the exception or its traceback (they hold the frames of the command that
    failed). In memory each is only its key's digest, where its line starts and ends, and
    its time, in a :class:`KeyRing` allocated once: a repeat reads its line back. Kept as
    Python objects, thousands of outcomes living an hour each pinned the allocator's arenas
    (docs/reliability.md, "What grew").

    Bounded: at most ``capacity`` decided outcomes (the oldest forgotten first), each
    forgotten ``ttl_ms`` after it was decided; in flight, one per command running.
    """

    def __init__(self, capacity: int = 10_000, *, path: Path, ttl_ms: int = 86_400_000) -> None:
        self.capacity = capacity
        self.ttl_ms = ttl_ms
        self._running: dict[str, tuple[str, asyncio.Future[Any]]] = {}
        self._decided = KeyRing(capacity, fields=3)  # _START, _END, _AT
        self._path = path
        self._lines = 0  # lines in the log file: rewritten past 2 x capacity
        self._load()

    def _load(self) -> None:
        try:
            fh = self._path.open("r+b")
        except FileNotFoundError:
            return
        with fh:
            start = 0
            for line in fh:
                if not line.endswith(b"\n"):
                    # Torn by a crash (that outcome was never answered): cut, so that the
                    # next outcome starts a line of its own.
                    log.warning("idempotency_log_torn_line_cut path=%s line=%r",
                                self._path, line[:80])  # fmt: skip
                    fh.truncate(start)
                    break
                self._lines += 1
                try:
                    entry = _decode(line)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    log.warning("idempotency_log_line_skipped path=%s line=%r",
                                self._path, line[:80])  # fmt: skip
                else:
                    self._decided.add(entry.key, start, start + len(line) - 1, entry.at)
                start += len(line)
        self._decided.expire(_AT, now_ms() - self.ttl_ms)

    def _read(self, key: str, slot: int) -> _Logged | None:
        """The outcome logged for ``key``; None (and forgotten) when the log lost it."""
        start, end = self._decided.value(slot, _START), self._decided.value(slot, _END)
        try:
            with self._path.open("rb") as fh:
                fh.seek(start)
                entry = _decode(fh.read(end - start))
            if entry.key == key:
                return entry
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            pass
        log.warning("idempotency_log_entry_lost path=%s key=%r", self._path, key)
        self._decided.forget(slot)  # the bridge's own orders still decide a repeat (by tag)
        return None

    def _log(self, entry: _Logged) -> None:
        line = msgspec.json.encode(entry)
        # Not fsynced: the log serves exact replays; should the machine lose its last lines,
        # a repeat is still matched against the order the bridge holds (its tag).
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._path.open("ab") as fh:
                start = fh.tell()
                fh.write(line + b"\n")
        except OSError as exc:  # the command is done: its answer must still reach the caller
            log.error("idempotency_log_write_failed path=%s key=%r error=%r",
                      self._path, entry.key, exc)  # fmt: skip
            return
        self._decided.add(entry.key, start, start + len(line), entry.at)
        self._decided.expire(_AT, now_ms() - self.ttl_ms)
        self._lines += 1
        if self._lines > 2 * self.capacity:
            try:
                self._compact()
            except OSError as exc:  # the log keeps growing until a rewrite succeeds
                log.error("idempotency_log_compaction_failed path=%s error=%r", self._path, exc)

    def _compact(self) -> None:
        """Rewrite the log with the outcomes kept, line by line (never the whole log in
        memory: 10 000 lines are ~6.5 MB the allocator would keep after each rewrite)."""
        ring, tmp = self._decided, self._path.with_suffix(".tmp")
        # Where each kept line starts in the new file, by slot: one buffer, not a tuple per
        # line (10 000 tuples at once moved the allocator to a new arena for good).
        starts = array("q", bytes(8 * ring.capacity))
        with self._path.open("rb") as old, tmp.open("wb") as new:
            for slot in ring.slots():
                old.seek(ring.value(slot, _START))
                starts[slot] = new.tell()
                new.write(old.read(ring.value(slot, _END) - ring.value(slot, _START) + 1))
        os.replace(tmp, self._path)
        self._lines = 0
        for slot in ring.slots():
            ring.set(slot, _END, starts[slot] + ring.value(slot, _END) - ring.value(slot, _START))
            ring.set(slot, _START, starts[slot])
            self._lines += 1

    def __len__(self) -> int:
        self._decided.expire(_AT, now_ms() - self.ttl_ms)
        return len(self._running) + len(self._decided)

    def in_flight(self) -> int:
        """Entries whose first attempt has not decided yet."""
        return len(self._running)

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
        if (running := self._running.get(key)) is not None:
            if running[0] != fp:
                raise duplicate(order)
            return await asyncio.shield(running[1]), True
        self._decided.expire(_AT, now_ms() - self.ttl_ms)
        slot = self._decided.find(key)
        if slot is not None and (logged := self._read(key, slot)) is not None:
            if _stored_digest(logged.fp) != fp:
                raise duplicate(order)
            if logged.error is not None:
                err = logged.error
                raise HubError(err["code"], err["message"], err.get("details"))
            return msgspec.json.decode(logged.result), True
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._running[key] = (fp, future)
        try:
            result = await action()
        except HubError as exc:
            # Waiting repeats get a copy: the raised one carries this command's frames.
            future.set_exception(HubError(exc.code, exc.message, exc.details))
            future.exception()  # retrieved: repeats re-raise it, nobody else has to
            del self._running[key]
            if exc.code != "duplicate":  # a duplicate: the id is an earlier order's, not this one's
                self._log(_Logged(key=key, fp=fp, at=now_ms(), error=exc.body()["error"]))
            raise
        except BaseException as exc:
            # Not a decided outcome (a bug or cancellation): forget it so a retry may run.
            del self._running[key]
            future.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
            future.exception()
            raise
        future.set_result(result)
        del self._running[key]
        raw = msgspec.Raw(msgspec.json.encode(result))
        self._log(_Logged(key=key, fp=fp, at=now_ms(), result=raw))
        return result, False
