"""The notifier: picks notices out of this instance's publications and delivers them.

:meth:`Notifier.observe` is a publisher observer: synchronous, it never blocks or does
I/O; notices wanted by a target go into a bounded in-memory queue (``capacity``; when
full, new notices are dropped, counted in ``dropped`` and logged: the queue only fills if
the disk stops). One task moves the queue into the durable :class:`Outbox` as soon as
anything arrives; one task per target then delivers that target's rows oldest first,
one at a time, so a target sees its notices in order. A failed attempt is retried after
``retry_initial`` seconds, doubling up to ``retry_max``, until the target accepts it: a
row is never given up. Nothing here runs on the trading or fan-out path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import msgspec

from channels import cancellation, names
from channels.clock import now_ms
from hub.config import NotifyTarget
from hub.notify.events import Notice, Notices
from hub.notify.outbox import NewDelivery, Outbox
from hub.notify.send import DeliveryFailed, request_for, send

__all__ = ["Notifier", "NotifyHealth"]

log = logging.getLogger("mt4hub.notify")

_BATCH = 500
_IDLE_CHECK = 30.0  # seconds a target worker sleeps without a wake-up before looking anyway


class NotifyHealth(msgspec.Struct, frozen=True, kw_only=True):
    targets: list[str]
    queued: int
    dropped: int
    delivered: dict[str, int]
    failed_attempts: dict[str, int]


def _wants(target: NotifyTarget, notice: Notice) -> bool:
    if "*" not in target.events and notice.event not in target.events:
        return False
    return target.agents is None or notice.agent_id is None or notice.agent_id in target.agents


def _may_notify(channel: str) -> bool:
    """Cheap pre-filter, so ticks and accounts cost one string test."""
    return channel.endswith((":orders", ":status")) or channel == names.SYSTEM


class Notifier:
    def __init__(
        self,
        targets: list[NotifyTarget],
        outbox: Outbox,
        env: Mapping[str, str],
        *,
        capacity: int = 10_000,
    ) -> None:
        self.targets = {t.name: t for t in targets}
        self.outbox = outbox
        self.env = env
        self.capacity = capacity
        self._notices = Notices()
        self._queue: deque[NewDelivery] = deque()
        self._wake = asyncio.Event()
        self._target_wake = {name: asyncio.Event() for name in self.targets}
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0
        self.delivered = dict.fromkeys(self.targets, 0)
        self.failed_attempts = dict.fromkeys(self.targets, 0)

    def observe(self, channel: str, key: str | None, data: Any) -> None:
        """A publication of this instance (publisher observer: never blocks)."""
        if not self.targets or not _may_notify(channel):
            return
        for notice in self._notices.of(channel, data):
            now = now_ms()
            for target in self.targets.values():
                if not _wants(target, notice):
                    continue
                if len(self._queue) >= self.capacity:
                    self.dropped += 1
                    log.error("notification_dropped target=%s event=%s: queue full (%d)",
                              target.name, notice.event, self.capacity)  # fmt: skip
                    continue
                self._queue.append(
                    NewDelivery(target=target.name, event=notice.event, agent_id=notice.agent_id,
                                text=notice.text, data=notice.data, created_at=now)
                )  # fmt: skip
        if self._queue:
            self._wake.set()

    async def start(self) -> None:
        await self.outbox.open()
        self._session = aiohttp.ClientSession()
        self._tasks.append(self._spawn("notify-store", self._store_loop))
        for target in self.targets.values():
            self._tasks.append(self._spawn(f"notify-{target.name}", self._worker(target)))
        missing = [
            f"notifications.{t.name}: environment variable {var} is not set"
            for t in self.targets.values()
            for var in (t.secret_env, t.token_env, t.chat_id_env)
            if var and not self.env.get(var)
        ]
        for line in missing:
            log.error("notify_target_unusable %s (its notices wait in the outbox)", line)

    def _spawn(self, name: str, loop: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
        async def supervised() -> None:
            while True:
                try:
                    await loop()
                except Exception as exc:  # the outbox's disk, or a bug: logged, restarted
                    log.error("notify_task_failed task=%s error=%r (restarting in 1 s)", name, exc,
                              exc_info=not isinstance(exc, sqlite3.Error | OSError))  # fmt: skip
                    await cancellation.sleep(1.0)

        return asyncio.create_task(supervised(), name=name)

    async def stop(self) -> None:
        if self._session is None:
            return  # never started
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        try:
            await self._store_queued()  # what was observed to the end is kept
        finally:
            await self._session.close()
            self._session = None
            await self.outbox.close()

    async def _store_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._store_queued()

    async def _store_queued(self) -> None:
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(_BATCH, len(self._queue)))]
            try:
                # Shielded: a stop while the outbox's thread writes lets the write finish.
                await asyncio.shield(self.outbox.add(batch))
            except asyncio.CancelledError:
                raise
            except Exception:
                self._queue.extendleft(reversed(batch))  # kept, in order, for the next try
                raise
            for name in {item.target for item in batch}:
                self._target_wake[name].set()

    def _worker(self, target: NotifyTarget) -> Callable[[], Awaitable[None]]:
        wake = self._target_wake[target.name]

        async def deliver() -> None:
            assert self._session is not None
            while True:
                wake.clear()
                row = await self.outbox.next_pending(target.name)
                if row is None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), _IDLE_CHECK)
                    continue
                try:
                    await send(self._session, request_for(target, row, self.env), target.timeout)
                except DeliveryFailed as exc:
                    self.failed_attempts[target.name] += 1
                    await self.outbox.failed(row.id, str(exc))
                    delay = min(target.retry_max, target.retry_initial * 2 ** min(row.attempts, 30))
                    log.warning("notify_failed target=%s id=%d event=%s attempt=%d retry_in=%.1fs"
                                " error=%s", target.name, row.id, row.event, row.attempts + 1,
                                delay, exc)  # fmt: skip
                    await cancellation.sleep(delay)
                    continue
                await self.outbox.delivered(row.id)
                self.delivered[target.name] += 1

        return deliver

    def health(self) -> NotifyHealth:
        return NotifyHealth(
            targets=list(self.targets),
            queued=len(self._queue),
            dropped=self.dropped,
            delivered=dict(self.delivered),
            failed_attempts=dict(self.failed_attempts),
        )
