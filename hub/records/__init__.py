"""Records: every trade, signal, log, equity snapshot, tick and candle, stored in a database.

Wiring (done once in the app's lifespan)::

    store = open_store(os.environ.get("DATABASE_URL"))   # SQLite file by default
    writer = RecordWriter(store, Spool(Path("data/spool")))
    await writer.start()          # opens the spool, replays it, connects (tolerates a DB outage)
    writer.submit(TickRecord(...))  # sync, never blocks: the publish path calls it
    rows = await store.trades(agent="agent_1", limit=50, before=cursor)  # REST
    writer.health()               # for /api/status
    await writer.close(); await store.close()

Modules: :mod:`~hub.records.records` (what is written), :mod:`~hub.records.rows`
(what queries return), :mod:`~hub.records.store` (the interface and
:func:`open_store`), :mod:`~hub.records.sqlite` and :mod:`~hub.records.postgres`
(the engines), :mod:`~hub.records.writer`, :mod:`~hub.records.spool`,
:mod:`~hub.records.errors`. Migrations are SQL files in ``migrations/<engine>/``.
"""

from hub.records.errors import (
    QueryError,
    RecordsError,
    SpoolError,
    SpoolInUse,
    StoreConfigError,
    StoreDataError,
    StoreUnavailable,
)
from hub.records.records import (
    CandleRecord,
    EquitySnapshot,
    LogRecord,
    Record,
    SignalRecord,
    TickRecord,
    TradeClosed,
    TradeOpened,
    TradeUpdated,
)
from hub.records.rows import CandleRow, EquityRow, LogRow, SignalRow, TickRow, TradeRow
from hub.records.spool import DEFAULT_SPOOL_DIR, Spool
from hub.records.store import DEFAULT_SQLITE_PATH, Store, open_store
from hub.records.writer import RecordWriter, WriterHealth

__all__ = [
    "DEFAULT_SPOOL_DIR",
    "DEFAULT_SQLITE_PATH",
    "CandleRecord",
    "CandleRow",
    "EquityRow",
    "EquitySnapshot",
    "LogRecord",
    "LogRow",
    "QueryError",
    "Record",
    "RecordWriter",
    "RecordsError",
    "SignalRecord",
    "SignalRow",
    "Spool",
    "SpoolError",
    "SpoolInUse",
    "Store",
    "StoreConfigError",
    "StoreDataError",
    "StoreUnavailable",
    "TickRecord",
    "TickRow",
    "TradeClosed",
    "TradeOpened",
    "TradeRow",
    "TradeUpdated",
    "WriterHealth",
    "open_store",
]
