"""SQLite engine: stdlib ``sqlite3`` on one dedicated worker thread, WAL mode.

The connection is created and used only on that thread, so calls are serialised
and the event loop never waits on the disk.
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
from hub.records._batch import plan
from hub.records._migrations import load_migrations
from hub.records.errors import QueryError, StoreDataError, StoreUnavailable
from hub.records.records import (
    Record,
    TradeClosed,
    TradeOpened,
    TradeRecord,
    TradeUpdated,
)
from hub.records.rows import CandleRow, EquityRow, LogRow, SignalRow, TickRow, TradeRow, check_page
from hub.records.store import TABLES

__all__ = ["SqliteStore"]

T = TypeVar("T")
R = TypeVar("R")

_json = msgspec.json.Encoder()

_INSERT_TICK = (
    "INSERT INTO ticks (record_key, agent_id, symbol, bid, ask, time)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_UPSERT_CANDLE = (
    "INSERT INTO candles (agent_id, symbol, tf, t, o, h, l, c, ticks)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, symbol, tf, t) DO UPDATE"
    " SET h = excluded.h, l = excluded.l, c = excluded.c, ticks = excluded.ticks"
    " WHERE excluded.ticks > candles.ticks"
)
_CANDLE_COLUMNS = "symbol, tf, t, o, h, l, c, ticks"
_LAST_CANDLES = (
    f"SELECT {_CANDLE_COLUMNS} FROM candles AS b WHERE agent_id = ? AND t = (SELECT max(t)"
    " FROM candles WHERE agent_id = b.agent_id AND symbol = b.symbol AND tf = b.tf)"
)
_INSERT_LOG = (
    "INSERT INTO agent_logs (record_key, agent_id, event_type, message, metadata, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_INSERT_EQUITY = (
    "INSERT INTO equity_snapshots"
    " (record_key, agent_id, balance, equity, margin, profit, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
_UPSERT_SIGNAL = (
    "INSERT INTO signals (record_key, signal_id, symbol, direction, confidence, sl, tp,"
    " payload, outcome, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (signal_id) DO UPDATE SET outcome = coalesce(excluded.outcome, outcome)"
)
_INSERT_TRADE = (
    "INSERT INTO agent_trades (record_key, agent_id, client_order_id, symbol, action, lots,"
    " stop_loss, take_profit, comment, signal_id, status, ticket, open_price, open_time,"
    " created_at) VALUES (:record_key, :agent_id, :client_order_id, :symbol, :action, :lots,"
    " :stop_loss, :take_profit, :comment, :signal_id, :status, :ticket, :open_price,"
    " :open_time, :created_at) ON CONFLICT DO NOTHING"
)
_UPDATE_TRADE = (
    "UPDATE agent_trades SET status = :status, ticket = coalesce(:ticket, ticket),"
    " lots = coalesce(:lots, lots), open_price = coalesce(:open_price, open_price),"
    " open_time = coalesce(:open_time, open_time),"
    " stop_loss = coalesce(:stop_loss, stop_loss),"
    " take_profit = coalesce(:take_profit, take_profit)"
    " WHERE agent_id = :agent_id AND client_order_id = :client_order_id"
    " AND (status = 'accepted' OR (status = 'open' AND :status = 'open'))"
)
_MATCH_CLOSED = (
    "agent_id = :agent_id AND (ticket = :ticket"
    " OR (:client_order_id IS NOT NULL AND client_order_id = :client_order_id))"
)
_CLOSE_TRADE = (
    "UPDATE agent_trades SET status = 'closed', ticket = :ticket, lots = :lots,"
    " open_price = :open_price, close_price = :close_price, profit = :profit,"
    " open_time = :open_time, close_time = :close_time,"
    " stop_loss = coalesce(:stop_loss, stop_loss),"
    " take_profit = coalesce(:take_profit, take_profit),"
    " signal_id = coalesce(signal_id, :signal_id)"
    f" WHERE status IN ('accepted', 'open', 'closed') AND {_MATCH_CLOSED}"
)
_INSERT_CLOSED = (
    "INSERT INTO agent_trades (record_key, agent_id, ticket, symbol, action, lots, open_price,"
    " close_price, stop_loss, take_profit, profit, open_time, close_time, signal_id,"
    " client_order_id, status, comment, created_at)"
    " SELECT :record_key, :agent_id, :ticket, :symbol, :action, :lots, :open_price,"
    " :close_price, :stop_loss, :take_profit, :profit, :open_time, :close_time, :signal_id,"
    " :client_order_id, 'closed', :comment, :created_at"
    f" WHERE NOT EXISTS (SELECT 1 FROM agent_trades WHERE {_MATCH_CLOSED})"
    " ON CONFLICT DO NOTHING"
)


def _trade_params(r: TradeRecord) -> dict[str, Any]:
    params = msgspec.structs.asdict(r)
    params["record_key"] = r.record_key
    params.setdefault("client_order_id", None)
    return params


def _statements(sql: str) -> list[str]:
    """Split a migration script into complete statements."""
    out: list[str] = []
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    rest = "\n".join(ln for ln in buf.splitlines() if not ln.strip().startswith("--")).strip()
    if rest:
        raise RuntimeError(f"migration ends with an incomplete statement: {rest[:60]!r}")
    return out


class SqliteStore:
    """The SQLite engine of :class:`~hub.records.store.Store` (a file, WAL mode)."""

    def __init__(self, path: Path, *, timeout: float = 5.0) -> None:
        self.path = path
        self._timeout = timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # used on the worker thread only

    @property
    def engine(self) -> Literal["sqlite"]:
        return "sqlite"

    async def open(self) -> None:
        await self._run(lambda conn: None)

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._run_raw(self._close_conn)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def migrate(self) -> list[int]:
        return await self._run(self._migrate)

    async def write(self, records: Sequence[Record]) -> None:
        if records:
            await self._run(lambda conn: self._write(conn, records))

    async def trades(
        self,
        *,
        agent: str | None = None,
        limit: int = 100,
        before: int | None = None,
        signal_id: str | None = None,
        status: str | None = None,
    ) -> list[TradeRow]:
        check_page(limit, before)
        where, params = self._filters(agent=agent, before=before)
        for column, value in (("signal_id", signal_id), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = await self._select("agent_trades", where, params, "id DESC", limit)
        return [msgspec.convert(r, TradeRow) for r in rows]

    async def logs(
        self,
        *,
        agent: str | None = None,
        limit: int = 100,
        before: int | None = None,
        event_type: str | None = None,
    ) -> list[LogRow]:
        check_page(limit, before)
        where, params = self._filters(agent=agent, before=before)
        if event_type is not None:
            where.append("event_type = ?")
            params.append(event_type)
        rows = await self._select("agent_logs", where, params, "id DESC", limit)
        return [msgspec.convert(_decode_json(r, "metadata"), LogRow) for r in rows]

    async def signals(
        self, *, agent: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[SignalRow]:
        check_page(limit, before)
        where, params = self._filters(before=before)
        if agent is not None:
            where.append(
                "EXISTS (SELECT 1 FROM json_each(signals.outcome, '$.routes') AS route"
                " WHERE json_extract(route.value, '$.agent') = ?)"
            )
            params.append(agent)
        rows = await self._select("signals", where, params, "id DESC", limit)
        return [msgspec.convert(_decode_json(r, "payload", "outcome"), SignalRow) for r in rows]

    async def equity(
        self, agent: str, *, since_ms: int | None = None, limit: int = 1000
    ) -> list[EquityRow]:
        check_page(limit)
        where, params = self._filters(agent=agent, since=("created_at", since_ms))
        rows = await self._select("equity_snapshots", where, params, "created_at, id", limit)
        return [msgspec.convert(r, EquityRow) for r in rows]

    async def ticks(
        self,
        agent: str,
        *,
        symbol: str | None = None,
        since_ms: int | None = None,
        limit: int = 1000,
    ) -> list[TickRow]:
        check_page(limit)
        where, params = self._filters(agent=agent, since=("time", since_ms))
        if symbol is not None:
            where.append("symbol = ?")
            params.append(symbol)
        rows = await self._select("ticks", where, params, "time, id", limit)
        return [msgspec.convert(r, TickRow) for r in rows]

    async def candles(
        self, agent: str, symbol: str, tf: str, *, limit: int = 500, before: int | None = None
    ) -> list[CandleRow]:
        check_page(limit)
        sql = f"SELECT {_CANDLE_COLUMNS} FROM candles WHERE agent_id = ? AND symbol = ? AND tf = ?"
        params: list[Any] = [agent, symbol, tf]
        if before is not None:
            sql += " AND t < ?"
            params.append(before)
        sql += " ORDER BY t DESC LIMIT ?"
        rows = await self._run(lambda c: c.execute(sql, [*params, limit]).fetchall())
        return [msgspec.convert(dict(r), CandleRow) for r in reversed(rows)]

    async def last_candles(self, agent: str) -> list[CandleRow]:
        rows = await self._run(lambda c: c.execute(_LAST_CANDLES, [agent]).fetchall())
        return [msgspec.convert(dict(r), CandleRow) for r in rows]

    async def count(self, table: str) -> int:
        if table not in TABLES:
            raise QueryError(f"table: must be one of {', '.join(TABLES)}, got {table!r}")
        row = await self._run(lambda c: c.execute(f"SELECT count(*) FROM {table}").fetchone())
        return int(row[0])

    # -- worker thread -------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._run_raw(lambda: fn(self._connection()))

    async def _run_raw(self, fn: Callable[[], R]) -> R:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="mt4hub-sqlite")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, fn)

    def _guarded(self, fn: Callable[[], R]) -> R:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise StoreDataError(f"sqlite {self.path}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
            try:
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                self._migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _close_conn(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> list[int]:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        )
        applied: list[int] = []
        for m in load_migrations("sqlite"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (m.version,)
                ).fetchone()
                if done is None:
                    for statement in _statements(m.sql):
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?,?,?)",
                        (m.version, m.name, now_ms()),
                    )
                    applied.append(m.version)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return applied

    @staticmethod
    def _write(conn: sqlite3.Connection, records: Sequence[Record]) -> None:
        p = plan(records)
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                _INSERT_TICK,
                [(t.record_key, t.agent_id, t.symbol, t.bid, t.ask, t.time) for t in p.ticks],
            )
            conn.executemany(
                _INSERT_LOG,
                [
                    (x.record_key, x.agent_id, x.event_type, x.message,
                     _json.encode(x.metadata).decode(), x.created_at)
                    for x in p.logs
                ],
            )  # fmt: skip
            conn.executemany(
                _UPSERT_SIGNAL,
                [
                    (s.record_key, s.signal_id, s.symbol, s.direction, s.confidence, s.sl, s.tp,
                     _json.encode(s.payload).decode(),
                     None if s.outcome is None else _json.encode(s.outcome).decode(),
                     s.created_at)
                    for s in p.signals
                ],
            )  # fmt: skip
            conn.executemany(
                _INSERT_EQUITY,
                [
                    (e.record_key, e.agent_id, e.balance, e.equity, e.margin, e.profit,
                     e.created_at)
                    for e in p.equity
                ],
            )  # fmt: skip
            conn.executemany(
                _UPSERT_CANDLE,
                [
                    (b.agent_id, b.symbol, b.tf, b.t, b.o, b.h, b.l, b.c, b.ticks)
                    for b in p.candles.values()
                ],
            )
            for run in p.trade_runs:
                params = [_trade_params(r) for r in run]
                if isinstance(run[0], TradeOpened):
                    conn.executemany(_INSERT_TRADE, params)
                elif isinstance(run[0], TradeUpdated):
                    conn.executemany(_UPDATE_TRADE, params)
                else:
                    assert isinstance(run[0], TradeClosed)
                    for one in params:
                        conn.execute(_CLOSE_TRADE, one)
                        conn.execute(_INSERT_CLOSED, one)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- queries -------------------------------------------------------------

    @staticmethod
    def _filters(
        *,
        agent: str | None = None,
        before: int | None = None,
        since: tuple[str, int | None] = ("", None),
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if agent is not None:
            where.append("agent_id = ?")
            params.append(agent)
        if before is not None:
            where.append("id < ?")
            params.append(before)
        column, since_ms = since
        if since_ms is not None:
            where.append(f"{column} >= ?")
            params.append(since_ms)
        return where, params

    async def _select(
        self, table: str, where: list[str], params: list[Any], order: str, limit: int
    ) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM {table}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order} LIMIT ?"
        rows = await self._run(lambda c: c.execute(sql, [*params, limit]).fetchall())
        return [dict(r) for r in rows]


def _decode_json(row: dict[str, Any], *columns: str) -> dict[str, Any]:
    for column in columns:
        if row[column] is not None:
            row[column] = msgspec.json.decode(row[column])
    return row
