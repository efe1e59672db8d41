"""The durable spool: records waiting for the database, on local disk.

One append-only file, ``<dir>/records.jsonl``, one JSON record per line, fsync'd
after every appended batch. Records are read back in order from a byte offset and
the file is truncated once everything in it is in the database. A crash halfway
through a replay just replays again: every record has a unique key, so no row is
doubled. The directory is locked (``flock``) so two processes never share it.

A torn last line (a crash during a write) is cut off when the spool opens; a line
that doesn't decode is logged with its position and skipped. All methods do file
I/O: call them from a worker thread (``asyncio.to_thread``), one call at a time.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import msgspec

from hub.records.errors import SpoolError, SpoolInUse
from hub.records.records import Record, decode_record, encode_record

__all__ = ["DEFAULT_SPOOL_DIR", "Spool"]

log = logging.getLogger(__name__)

DEFAULT_SPOOL_DIR = Path("data/spool")
_FILE = "records.jsonl"


class Spool:
    """An append-only file of records; see the module docstring."""

    def __init__(self, directory: Path = DEFAULT_SPOOL_DIR) -> None:
        self.directory = directory
        self.path = directory / _FILE
        self._file: IO[bytes] | None = None
        self._lock: IO[bytes] | None = None
        self.records = 0  # lines in the file
        self.size = 0  # bytes in the file

    def open(self) -> None:
        """Create the directory, lock it, repair a torn tail and count the records."""
        if self._file is not None:
            return
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            lock = open(self.directory / "lock", "ab")  # noqa: SIM115 - held until close()
        except OSError as exc:
            raise SpoolError(f"spool {self.directory}: {exc}") from exc
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            lock.close()
            raise SpoolInUse(f"spool {self.directory} is in use by another process") from exc
        self._lock = lock
        self._file = open(self.path, "a+b")  # noqa: SIM115 - held until close()
        self._repair()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None

    def append(self, records: Sequence[Record]) -> None:
        """Append ``records`` and fsync: when this returns they survive a crash."""
        if not records:
            return
        f = self._opened()
        data = b"".join(encode_record(r) + b"\n" for r in records)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
        self.records += len(records)
        self.size += len(data)

    def read(self, offset: int, limit: int) -> tuple[list[Record], int]:
        """Up to ``limit`` records from byte ``offset``; returns them and the next offset."""
        f = self._opened()
        f.seek(offset)
        out: list[Record] = []
        while len(out) < limit:
            line = f.readline()
            if not line.endswith(b"\n"):
                break  # end of file (a torn line was cut off at open)
            position = offset
            offset += len(line)
            try:
                out.append(decode_record(line))
            except msgspec.DecodeError as exc:
                log.error("spool %s: skipping undecodable record at byte %d: %s", self.path,
                          position, exc)  # fmt: skip
        return out, offset

    def clear(self) -> None:
        """Empty the file (after everything in it was written to the database)."""
        f = self._opened()
        f.truncate(0)
        f.flush()
        os.fsync(f.fileno())
        self.records = 0
        self.size = 0

    def _opened(self) -> IO[bytes]:
        if self._file is None:
            raise SpoolError(f"spool {self.directory} is not open")
        return self._file

    def _repair(self) -> None:
        f = self._opened()
        f.seek(0)
        lines = 0
        end = 0  # just past the last newline
        position = 0
        while chunk := f.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk.rfind(b"\n")
            if last >= 0:
                end = position + last + 1
            position += len(chunk)
        if end < position:
            log.warning("spool %s: cutting a torn last record (%d bytes)", self.path,
                        position - end)  # fmt: skip
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
        self.records = lines
        self.size = end
