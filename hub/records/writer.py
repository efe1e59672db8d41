"""The record writer: batches records off the hot path, spools them while the database is away.

:meth:`RecordWriter.submit` is synchronous and never blocks: it appends to an
in-memory queue. One background task drains the queue in batches into the store.
When the database is unreachable, or the queue holds more than ``capacity``
records, the writer switches to *spooling*: every record goes, in order, to the
durable spool (fsync'd per batch), and the spool is replayed into the database
as fast as it accepts them; once it is empty the writer writes directly again.
Records keep their order throughout, and a replay never doubles a row (each
record has a unique key). A non-empty spool left by a crash is replayed at start.

If the task can't keep up at all (the queue reaches ``4 * capacity``, e.g. the
disk stalls), further records are dropped, counted in ``health().dropped`` and
logged. A record the database refuses (:class:`StoreDataError`) is logged with
the error and counted in ``rejected``; the rest of its batch is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import msgspec

from hub.records.errors import StoreDataError, StoreUnavailable
from hub.records.records import Record
from hub.records.spool import Spool
from hub.records.store import Store

__all__ = ["RecordWriter", "WriterHealth"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_OVERFLOW_FACTOR = 4


class WriterHealth(msgspec.Struct, frozen=True, kw_only=True):
    """Store health for ``/api/status``."""

    engine: str
    healthy: bool
    last_error: str | None
    queue_depth: int
    queue_capacity: int
    spool_records: int
    spool_bytes: int
    written: int
    rejected: int
    dropped: int


class RecordWriter:
    """Writes submitted records to ``store``, through ``spool`` when it must.

    The writer owns the spool (opens it in :meth:`start`, closes it in
    :meth:`close`); the caller owns the store.
    """

    def __init__(
        self,
        store: Store,
        spool: Spool,
        *,
        capacity: int = 10_000,
        batch_size: int = 1000,
        retry_initial: float = 0.5,
        retry_max: float = 5.0,
        spool_interval: float = 0.2,
    ) -> None:
        if capacity < 1 or batch_size < 1:
            raise ValueError("capacity and batch_size must be >= 1")
        self._store = store
        self._spool = spool
        self._capacity = capacity
        self._batch_size = batch_size
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._spool_interval = spool_interval
        self._queue: deque[Record] = deque()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._spooling = False
        self._replay_offset = 0
        self._replayed = 0
        # Records in the spool as this loop counts them: moved from the queue in one step, so
        # health() never counts a record twice (the spool's own count rises on its thread,
        # before the queue lets go of the batch).
        self._spooled = 0
        self._closing = False
        self._closed = False
        self._healthy = True
        self._last_error: str | None = None
        self._written = 0
        self._rejected = 0
        self._dropped = 0

    async def start(self) -> None:
        """Open the spool (replaying what a crash left there) and start writing."""
        if self._task is not None:
            raise RuntimeError("RecordWriter already started")
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="mt4hub-spool")
        await self._on_spool_thread(self._spool.open)
        self._spooled = self._spool.records
        if self._spool.records:
            log.warning("spool %s holds %d records: replaying", self._spool.path,
                        self._spool.records)  # fmt: skip
            self._spooling = True
        try:
            await self._store.open()
        except StoreUnavailable as exc:
            self._failed(exc)
        self._task = asyncio.create_task(self._run(), name="records-writer")

    def submit(self, record: Record) -> None:
        """Queue ``record`` for writing; never blocks. Call from the event loop thread."""
        if self._closed or self._closing:
            raise RuntimeError("RecordWriter is closed: record not accepted")
        if len(self._queue) >= self._capacity * _OVERFLOW_FACTOR:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 10_000 == 0:
                log.error("record queue overflow (%d records): %d records dropped so far",
                          len(self._queue), self._dropped)  # fmt: skip
            return
        self._queue.append(record)
        self._idle.clear()
        self._wakeup.set()

    async def wait_written(self) -> None:
        """Return once everything submitted so far is in the database (spool empty)."""
        await self._idle.wait()

    async def close(self, *, flush: bool = True, grace: float = 10.0) -> None:
        """Stop. With ``flush``, queued records go to the database, or to the spool
        (waiting at most ``grace`` seconds).

        ``flush=False`` drops what is only in memory, like a crash (for tests);
        the spool keeps what it holds either way.
        """
        if self._closed:
            return
        self._closing = True
        self._wakeup.set()
        task, self._task = self._task, None
        if task is not None:
            if not flush:
                task.cancel()
            try:
                async with asyncio.timeout(grace):
                    await task
            except TimeoutError:
                log.error("record writer did not finish in %.1fs: %d queued records lost",
                          grace, len(self._queue))  # fmt: skip
            except asyncio.CancelledError:
                if flush:
                    raise
            except Exception:
                log.exception("record writer failed while closing")
        self._closed = True
        if self._executor is not None:
            await self._on_spool_thread(self._spool.close)
            self._executor.shutdown(wait=True)
            self._executor = None

    def health(self) -> WriterHealth:
        task_dead = self._task is not None and self._task.done()
        return WriterHealth(
            engine=self._store.engine,
            healthy=self._healthy and not task_dead,
            last_error=self._last_error,
            queue_depth=len(self._queue),
            queue_capacity=self._capacity,
            spool_records=max(0, self._spooled - self._replayed),
            spool_bytes=self._spool.size,
            written=self._written,
            rejected=self._rejected,
            dropped=self._dropped,
        )

    # -- the background task ---------------------------------------------------

    async def _run(self) -> None:
        delay = self._retry_initial
        while True:
            if self._closing:
                await self._final_flush()
                return
            if not self._queue and not self._spooling:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            try:
                if self._spooling or len(self._queue) > self._capacity:
                    ok = await self._spool_queue() and await self._replay_batch()
                else:
                    ok = await self._write_direct()
            except Exception as exc:  # a bug or a disk error: stay alive, loudly
                log.exception("record writer step failed")
                self._last_error = f"{type(exc).__name__}: {exc}"
                ok = False
            if ok:
                delay = self._retry_initial
            else:
                await self._back_off(delay)
                delay = min(delay * 2, self._retry_max)

    async def _write_direct(self) -> bool:
        batch = [self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))]
        try:
            await self._write(batch)
        except Exception as exc:
            self._failed(exc)
            self._queue.extendleft(reversed(batch))  # the spool takes them next, in order
            self._spooling = True
            await self._spool_queue()
            return False
        return True

    async def _spool_queue(self) -> bool:
        """Move everything queued to the spool; on a disk error keep it queued."""
        if not self._queue:
            return True
        batch = list(self._queue)
        try:
            await self._on_spool_thread(lambda: self._spool.append(batch))
        except OSError as exc:
            log.error("spool %s: append failed, %d records stay queued: %s", self._spool.path,
                      len(batch), exc)  # fmt: skip
            self._last_error = f"spool: {exc}"
            return False
        for _ in batch:
            self._queue.popleft()
        self._spooled += len(batch)
        self._spooling = True
        return True

    async def _replay_batch(self) -> bool:
        """Write the next batch of the spool; clear the spool once all of it is written."""
        offset = self._replay_offset
        records, end = await self._on_spool_thread(
            lambda: self._spool.read(offset, self._batch_size)
        )
        if end == offset:
            await self._on_spool_thread(self._spool.clear)
            self._replay_offset = self._replayed = self._spooled = 0
            self._spooling = False
            log.info("spool replayed: writing directly again")
            return True
        try:
            await self._write(records)
        except Exception as exc:
            self._failed(exc)
            return False
        self._replay_offset = end
        self._replayed += len(records)
        return True

    async def _write(self, records: list[Record]) -> None:
        """Write a batch; a record the database refuses is logged and skipped."""
        try:
            await self._store.write(records)
        except StoreDataError:
            for record in records:
                try:
                    await self._store.write([record])
                except StoreDataError as exc:
                    self._rejected += 1
                    log.error("record refused by the database, skipped: %s: %r", exc, record)
                else:
                    self._written += 1
        else:
            self._written += len(records)
        if not self._healthy:
            log.info("database %s is back", self._store.engine)
        self._healthy = True

    async def _back_off(self, delay: float) -> None:
        """Wait ``delay`` before the next try, moving queued records to the spool meanwhile."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while not self._closing and (remaining := deadline - loop.time()) > 0:
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, self._spool_interval)):
                    await self._wakeup.wait()
            if self._spooling:
                await self._spool_queue()

    async def _final_flush(self) -> None:
        while self._queue:
            if self._spooling or not self._healthy:
                if not await self._spool_queue():
                    log.error("%d queued records lost at shutdown", len(self._queue))
                    return
            elif not await self._write_direct():
                continue  # its batch went to the spool with the rest

    def _failed(self, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"
        if self._healthy or message != self._last_error:
            if isinstance(exc, StoreUnavailable):
                log.warning("database %s unavailable, spooling records: %s",
                            self._store.engine, exc)  # fmt: skip
            else:
                log.error("writing records failed, spooling them", exc_info=exc)
        self._healthy = False
        self._last_error = message

    async def _on_spool_thread(self, fn: Callable[[], T]) -> T:
        assert self._executor is not None
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)
