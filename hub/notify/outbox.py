"""The notification outbox: a SQLite file in the instance's data dir, on one worker thread.

Every notice for a target is one row, ``pending`` until the target accepts it, then
``delivered``. The file is local on purpose: notices must be kept while the records
database is away, and each instance notifies what it published itself. Rows are
written with ``synchronous=FULL`` (a crash or power cut right after :meth:`add`
loses nothing); delivered rows beyond ``keep_delivered`` are pruned, oldest first.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from channels.clock import now_ms
from hub.records.rows import check_page

__all__ = ["Delivery", "NewDelivery", "Outbox"]

T = TypeVar("T")

Status = Literal["pending", "delivered"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    event TEXT NOT NULL,
    agent_id TEXT,
    text TEXT NOT NULL,
    data TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (target, status, id);
"""

_COLUMNS = (
    "id, target, event, agent_id, text, data, status, attempts, last_error,"
    " created_at, updated_at, delivered_at"
)


class NewDelivery(msgspec.Struct, frozen=True, kw_only=True):
    target: str
    event: str
    agent_id: str | None
    text: str
    data: dict[str, Any]
    created_at: int


class Delivery(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the delivery log (``GET /api/notifications``)."""

    id: int
    target: str
    event: str
    agent_id: str | None
    text: str
    data: dict[str, Any]
    status: Status
    attempts: int
    last_error: str | None
    created_at: int
    updated_at: int
    delivered_at: int | None


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


def _row(r: tuple[Any, ...]) -> Delivery:
    return Delivery(
        id=r[0], target=r[1], event=r[2], agent_id=r[3], text=r[4], data=_decode(r[5]),
        status=r[6], attempts=r[7], last_error=r[8], created_at=r[9], updated_at=r[10],
        delivered_at=r[11],
    )  # fmt: skip


class Outbox:
    def __init__(self, path: Path, *, keep_delivered: int = 10_000) -> None:
        self.path = path
        self.keep_delivered = keep_delivered
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # the worker thread's only

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="notify-outbox")
        await self._run(lambda conn: None)

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._run(lambda conn: conn.close())
        self._executor.shutdown(wait=True)
        self._executor = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            raise RuntimeError("outbox is not open")

        def call() -> T:
            return fn(self._connection())

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def add(self, items: Sequence[NewDelivery]) -> None:
        """Store ``items`` as pending, in order, in one transaction."""

        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN")
                conn.executemany(
                    "INSERT INTO deliveries (target, event, agent_id, text, data, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            i.target,
                            i.event,
                            i.agent_id,
                            i.text,
                            _encode(i.data).decode(),
                            i.created_at,
                            i.created_at,
                        )
                        for i in items
                    ],
                )

        await self._run(write)

    async def next_pending(self, target: str) -> Delivery | None:
        """The target's oldest undelivered row (targets get theirs in order)."""

        def read(conn: sqlite3.Connection) -> Delivery | None:
            r = conn.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE target = ? AND status = 'pending'"
                " ORDER BY id LIMIT 1",
                (target,),
            ).fetchone()
            return _row(r) if r else None

        return await self._run(read)

    async def delivered(self, delivery_id: int) -> None:
        def write(conn: sqlite3.Connection) -> None:
            now = now_ms()
            with conn:
                conn.execute("BEGIN")
                conn.execute(
                    "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1,"
                    " last_error = NULL, updated_at = ?, delivered_at = ? WHERE id = ?",
                    (now, now, delivery_id),
                )
                conn.execute(
                    "DELETE FROM deliveries WHERE status = 'delivered' AND id <= ("
                    " SELECT id FROM deliveries WHERE status = 'delivered'"
                    " ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (self.keep_delivered,),
                )

        await self._run(write)

    async def failed(self, delivery_id: int, error: str) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?, updated_at = ?"
                " WHERE id = ?",
                (error[:500], now_ms(), delivery_id),
            )

        await self._run(write)

    async def page(
        self,
        *,
        agent: str | None = None,
        limit: int = 100,
        before: int | None = None,
        target: str | None = None,
        status: str | None = None,
        event: str | None = None,
    ) -> list[Delivery]:
        """The delivery log, newest first (``before``: the id cursor of the previous page)."""
        check_page(limit, before)
        where, args = ["1 = 1"], []  # type: tuple[list[str], list[Any]]
        for column, value in (("agent_id", agent), ("target", target), ("status", status),
                              ("event", event)):  # fmt: skip
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if before is not None:
            where.append("id < ?")
            args.append(before)

        def read(conn: sqlite3.Connection) -> list[Delivery]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE {' AND '.join(where)}"
                " ORDER BY id DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
            return [_row(r) for r in rows]

        return await self._run(read)

    async def pending_counts(self) -> dict[str, int]:
        def read(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT target, count(*) FROM deliveries WHERE status = 'pending' GROUP BY target"
            ).fetchall()
            return {t: n for t, n in rows}

        return await self._run(read)
