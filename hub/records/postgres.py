"""Postgres engine: an asyncpg pool, tables in schema ``trading``.

Ticks go in with ``copy_records_to_table`` into a temporary table, then one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` (COPY alone can't skip rows a
replay already wrote); everything else with ``executemany``. Migrations take an
advisory lock, so hubs starting together apply each one once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from typing import Any, Literal, TypeVar

import asyncpg
import msgspec

from channels.clock import now_ms
from hub.records._batch import plan
from hub.records._migrations import load_migrations
from hub.records.errors import QueryError, StoreDataError, StoreUnavailable
from hub.records.records import Record, TradeClosed, TradeOpened, TradeUpdated
from hub.records.rows import CandleRow, EquityRow, LogRow, SignalRow, TickRow, TradeRow, check_page
from hub.records.store import TABLES

__all__ = ["PostgresStore"]

T = TypeVar("T")

SCHEMA = "trading"
_MIGRATION_LOCK = 0x6D7434687562  # "mt4hub"

_json = msgspec.json.Encoder()

# SQLSTATE classes that mean "the data is wrong", not "the database is away".
_DATA_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.IntegrityConstraintViolationError,
)

_TICKS_TEMP = (
    "CREATE TEMP TABLE IF NOT EXISTS ticks_in (record_key text, agent_id text, symbol text,"
    " bid double precision, ask double precision, time bigint) ON COMMIT DELETE ROWS"
)
_TICKS_MOVE = (
    "INSERT INTO trading.ticks (record_key, agent_id, symbol, bid, ask, time)"
    " SELECT record_key, agent_id, symbol, bid, ask, time FROM ticks_in ON CONFLICT DO NOTHING"
)
_UPSERT_CANDLE = (
    "INSERT INTO trading.candles AS b (agent_id, symbol, tf, t, o, h, l, c, ticks)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (agent_id, symbol, tf, t) DO UPDATE"
    " SET h = excluded.h, l = excluded.l, c = excluded.c, ticks = excluded.ticks"
    " WHERE excluded.ticks > b.ticks"
)
_CANDLE_COLUMNS = "symbol, tf, t, o, h, l, c, ticks"
_LAST_CANDLES = (
    f"SELECT DISTINCT ON (symbol, tf) {_CANDLE_COLUMNS} FROM trading.candles"
    " WHERE agent_id = $1 ORDER BY symbol, tf, t DESC"
)
_INSERT_LOG = (
    "INSERT INTO trading.agent_logs (record_key, agent_id, event_type, message, metadata,"
    " created_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6) ON CONFLICT DO NOTHING"
)
_INSERT_EQUITY = (
    "INSERT INTO trading.equity_snapshots"
    " (record_key, agent_id, balance, equity, margin, profit, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING"
)
_UPSERT_SIGNAL = (
    "INSERT INTO trading.signals (record_key, signal_id, symbol, direction, confidence, sl, tp,"
    " payload, outcome, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb,"
    " $10) ON CONFLICT (signal_id) DO UPDATE"
    " SET outcome = coalesce(excluded.outcome, trading.signals.outcome)"
)
_INSERT_TRADE = (
    "INSERT INTO trading.agent_trades (record_key, agent_id, client_order_id, symbol, action,"
    " lots, stop_loss, take_profit, comment, signal_id, status, ticket, open_price, open_time,"
    " created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    " ON CONFLICT DO NOTHING"
)
_UPDATE_TRADE = (
    "UPDATE trading.agent_trades SET status = $3, ticket = coalesce($4, ticket),"
    " lots = coalesce($5, lots), open_price = coalesce($6, open_price),"
    " open_time = coalesce($7, open_time), stop_loss = coalesce($8, stop_loss),"
    " take_profit = coalesce($9, take_profit)"
    " WHERE agent_id = $1 AND client_order_id = $2"
    " AND (status = 'accepted' OR (status = 'open' AND $3 = 'open'))"
)
# $1 agent_id, $2 ticket, $3 client_order_id, then the row's values.
_CLOSE_TRADE = (
    "WITH closed AS (UPDATE trading.agent_trades SET status = 'closed', ticket = $2,"
    " lots = $6, open_price = $7, close_price = $8, profit = $9, open_time = $10,"
    " close_time = $11, stop_loss = coalesce($12, stop_loss),"
    " take_profit = coalesce($13, take_profit), signal_id = coalesce(signal_id, $15)"
    " WHERE status IN ('accepted', 'open', 'closed') AND agent_id = $1"
    " AND (ticket = $2 OR ($3::text IS NOT NULL AND client_order_id = $3::text))"
    " RETURNING id)"
    " INSERT INTO trading.agent_trades (agent_id, ticket, client_order_id, record_key, symbol,"
    " action, lots, open_price, close_price, profit, open_time, close_time, stop_loss,"
    " take_profit, comment, signal_id, created_at, status)"
    " SELECT $1::text, $2::bigint, $3::text, $4::text, $5::text, $16::text,"
    " $6::double precision, $7::double precision, $8::double precision, $9::double precision,"
    " $10::bigint, $11::bigint, $12::double precision, $13::double precision, $14::text,"
    " $15::text, $17::bigint, 'closed'"
    " WHERE NOT EXISTS (SELECT 1 FROM closed) AND NOT EXISTS (SELECT 1 FROM trading.agent_trades"
    " WHERE agent_id = $1 AND (ticket = $2"
    " OR ($3::text IS NOT NULL AND client_order_id = $3::text)))"
    " ON CONFLICT DO NOTHING"
)


class PostgresStore:
    """The Postgres engine of :class:`~hub.records.store.Store`."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 5.0,
        command_timeout: float = 10.0,
        max_connections: int = 4,
    ) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._max_connections = max_connections
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    @property
    def engine(self) -> Literal["postgres"]:
        return "postgres"

    async def open(self) -> None:
        await self._get_pool()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def migrate(self) -> list[int]:
        pool = await self._get_pool()
        return await self._guard(self._migrate(pool))

    async def write(self, records: Sequence[Record]) -> None:
        if records:
            pool = await self._get_pool()
            await self._guard(self._write(pool, records))

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
        q = _Query(agent=agent, before=before)
        q.add("signal_id = {}", signal_id)
        q.add("status = {}", status)
        rows = await self._select("agent_trades", q, "id DESC", limit)
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
        q = _Query(agent=agent, before=before)
        q.add("event_type = {}", event_type)
        rows = await self._select("agent_logs", q, "id DESC", limit)
        return [msgspec.convert(_decode_json(r, "metadata"), LogRow) for r in rows]

    async def signals(
        self, *, agent: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[SignalRow]:
        check_page(limit, before)
        q = _Query(before=before)
        q.add(
            "outcome -> 'routes' @> jsonb_build_array(jsonb_build_object('agent', {}::text))", agent
        )
        rows = await self._select("signals", q, "id DESC", limit)
        return [msgspec.convert(_decode_json(r, "payload", "outcome"), SignalRow) for r in rows]

    async def equity(
        self, agent: str, *, since_ms: int | None = None, limit: int = 1000
    ) -> list[EquityRow]:
        check_page(limit)
        q = _Query(agent=agent)
        q.add("created_at >= {}", since_ms)
        rows = await self._select("equity_snapshots", q, "created_at, id", limit)
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
        q = _Query(agent=agent)
        q.add("symbol = {}", symbol)
        q.add("time >= {}", since_ms)
        rows = await self._select("ticks", q, "time, id", limit)
        return [msgspec.convert(r, TickRow) for r in rows]

    async def candles(
        self, agent: str, symbol: str, tf: str, *, limit: int = 500, before: int | None = None
    ) -> list[CandleRow]:
        check_page(limit)
        sql = (
            f"SELECT {_CANDLE_COLUMNS} FROM {SCHEMA}.candles"
            " WHERE agent_id = $1 AND symbol = $2 AND tf = $3 AND ($4::bigint IS NULL OR t < $4)"
            " ORDER BY t DESC LIMIT $5"
        )
        rows = await self._fetch(sql, agent, symbol, tf, before, limit)
        return [msgspec.convert(r, CandleRow) for r in reversed(rows)]

    async def last_candles(self, agent: str) -> list[CandleRow]:
        rows = await self._fetch(_LAST_CANDLES, agent)
        return [msgspec.convert(r, CandleRow) for r in rows]

    async def _fetch(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        pool = await self._get_pool()
        async with self._acquire(pool) as conn:
            rows = await self._guard(conn.fetch(sql, *params))
        return [dict(r) for r in rows]

    async def count(self, table: str) -> int:
        if table not in TABLES:
            raise QueryError(f"table: must be one of {', '.join(TABLES)}, got {table!r}")
        pool = await self._get_pool()
        async with self._acquire(pool) as conn:
            value = await self._guard(conn.fetchval(f"SELECT count(*) FROM {SCHEMA}.{table}"))
        return int(value)

    # -- connection ----------------------------------------------------------

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                pool = await self._guard(
                    asyncpg.create_pool(
                        self._url,
                        min_size=1,
                        max_size=self._max_connections,
                        timeout=self._connect_timeout,
                        command_timeout=self._command_timeout,
                    )
                )
                try:
                    await self._guard(self._migrate(pool))
                except BaseException:
                    pool.terminate()
                    raise
                self._pool = pool
            return self._pool

    @contextlib.asynccontextmanager
    async def _acquire(self, pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
        conn = await self._guard(pool.acquire(timeout=self._connect_timeout))
        try:
            yield conn
        finally:
            current = self._pool  # None or another pool: _guard terminated this one already
            if current is not None and current is pool:
                await current.release(conn, timeout=self._command_timeout)

    async def _guard(self, awaitable: Awaitable[T]) -> T:
        """Await, mapping driver errors onto StoreUnavailable / StoreDataError.

        On connection trouble the pool is dropped: the next call builds a fresh one
        (so no call is wasted on a connection the server closed while it was away).
        """
        try:
            return await awaitable
        except _DATA_ERRORS as exc:
            raise StoreDataError(f"postgres: {exc}") from exc
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            pool, self._pool = self._pool, None
            if pool is not None:
                pool.terminate()
            raise StoreUnavailable(f"postgres: {type(exc).__name__}: {exc}") from exc

    async def _migrate(self, pool: asyncpg.Pool) -> list[int]:
        applied: list[int] = []
        async with pool.acquire(timeout=self._connect_timeout) as conn:
            for m in load_migrations("postgres"):
                async with conn.transaction():
                    await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
                    await conn.execute(
                        f"CREATE SCHEMA IF NOT EXISTS {SCHEMA};"
                        f" CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations"
                        " (version integer PRIMARY KEY, name text NOT NULL,"
                        " applied_at bigint NOT NULL)"
                    )
                    done = await conn.fetchval(
                        f"SELECT 1 FROM {SCHEMA}.schema_migrations WHERE version = $1", m.version
                    )
                    if done is None:
                        await conn.execute(m.sql)
                        await conn.execute(
                            f"INSERT INTO {SCHEMA}.schema_migrations (version, name, applied_at)"
                            " VALUES ($1, $2, $3)",
                            m.version,
                            m.name,
                            now_ms(),
                        )
                        applied.append(m.version)
        return applied

    async def _write(self, pool: asyncpg.Pool, records: Sequence[Record]) -> None:
        p = plan(records)
        async with pool.acquire(timeout=self._connect_timeout) as conn, conn.transaction():
            if p.ticks:
                await conn.execute(_TICKS_TEMP)
                await conn.copy_records_to_table(
                    "ticks_in",
                    records=[
                        (t.record_key, t.agent_id, t.symbol, t.bid, t.ask, t.time) for t in p.ticks
                    ],
                )
                await conn.execute(_TICKS_MOVE)
            if p.logs:
                await conn.executemany(
                    _INSERT_LOG,
                    [
                        (x.record_key, x.agent_id, x.event_type, x.message,
                         _json.encode(x.metadata).decode(), x.created_at)
                        for x in p.logs
                    ],
                )  # fmt: skip
            if p.signals:
                await conn.executemany(
                    _UPSERT_SIGNAL,
                    [
                        (s.record_key, s.signal_id, s.symbol, s.direction, s.confidence, s.sl,
                         s.tp, _json.encode(s.payload).decode(),
                         None if s.outcome is None else _json.encode(s.outcome).decode(),
                         s.created_at)
                        for s in p.signals
                    ],
                )  # fmt: skip
            if p.equity:
                await conn.executemany(
                    _INSERT_EQUITY,
                    [
                        (e.record_key, e.agent_id, e.balance, e.equity, e.margin, e.profit,
                         e.created_at)
                        for e in p.equity
                    ],
                )  # fmt: skip
            if p.candles:
                await conn.executemany(
                    _UPSERT_CANDLE,
                    [
                        (b.agent_id, b.symbol, b.tf, b.t, b.o, b.h, b.l, b.c, b.ticks)
                        for b in p.candles.values()
                    ],
                )
            for run in p.trade_runs:
                if isinstance(run[0], TradeOpened):
                    await conn.executemany(
                        _INSERT_TRADE,
                        [
                            (o.record_key, o.agent_id, o.client_order_id, o.symbol, o.action,
                             o.lots, o.stop_loss, o.take_profit, o.comment, o.signal_id,
                             o.status, o.ticket, o.open_price, o.open_time, o.created_at)
                            for o in run
                            if isinstance(o, TradeOpened)
                        ],
                    )  # fmt: skip
                elif isinstance(run[0], TradeUpdated):
                    await conn.executemany(
                        _UPDATE_TRADE,
                        [
                            (u.agent_id, u.client_order_id, u.status, u.ticket, u.lots,
                             u.open_price, u.open_time, u.stop_loss, u.take_profit)
                            for u in run
                            if isinstance(u, TradeUpdated)
                        ],
                    )  # fmt: skip
                else:
                    await conn.executemany(
                        _CLOSE_TRADE,
                        [
                            (c.agent_id, c.ticket, c.client_order_id, c.record_key, c.symbol,
                             c.lots, c.open_price, c.close_price, c.profit, c.open_time,
                             c.close_time, c.stop_loss, c.take_profit, c.comment, c.signal_id,
                             c.action, c.created_at)
                            for c in run
                            if isinstance(c, TradeClosed)
                        ],
                    )  # fmt: skip

    async def _select(self, table: str, q: _Query, order: str, limit: int) -> list[dict[str, Any]]:
        sql = f"SELECT * FROM {SCHEMA}.{table}"
        if q.where:
            sql += " WHERE " + " AND ".join(q.where)
        sql += f" ORDER BY {order} LIMIT ${len(q.params) + 1}"
        pool = await self._get_pool()
        async with self._acquire(pool) as conn:
            rows = await self._guard(conn.fetch(sql, *q.params, limit))
        return [dict(r) for r in rows]


class _Query:
    """WHERE conditions with numbered parameters; ``add`` skips a ``None`` value."""

    def __init__(self, *, agent: str | None = None, before: int | None = None) -> None:
        self.where: list[str] = []
        self.params: list[Any] = []
        self.add("agent_id = {}", agent)
        self.add("id < {}", before)

    def add(self, condition: str, value: Any) -> None:
        if value is not None:
            self.params.append(value)
            self.where.append(condition.format(f"${len(self.params)}"))


def _decode_json(row: dict[str, Any], *columns: str) -> dict[str, Any]:
    for column in columns:
        if row[column] is not None:
            row[column] = msgspec.json.decode(row[column])
    return row
