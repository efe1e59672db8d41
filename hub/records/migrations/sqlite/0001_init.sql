-- MT4 Hub records (SQLite). Times are epoch milliseconds; JSON columns hold JSON text.
-- Every row has a unique record_key so a replayed record never doubles a row.

CREATE TABLE agent_trades (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    record_key      TEXT    NOT NULL UNIQUE,
    agent_id        TEXT    NOT NULL,
    ticket          INTEGER,
    symbol          TEXT    NOT NULL,
    action          TEXT    NOT NULL CHECK (action IN ('buy', 'sell')),
    lots            REAL    NOT NULL,
    open_price      REAL,
    close_price     REAL,
    stop_loss       REAL,
    take_profit     REAL,
    profit          REAL,
    open_time       INTEGER,
    close_time      INTEGER,
    signal_id       TEXT,
    client_order_id TEXT UNIQUE,
    status          TEXT    NOT NULL
                    CHECK (status IN ('accepted', 'open', 'closed', 'rejected', 'failed')),
    comment         TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX agent_trades_agent_ticket ON agent_trades (agent_id, ticket);
CREATE INDEX agent_trades_agent_id ON agent_trades (agent_id, id);
CREATE INDEX agent_trades_signal_id ON agent_trades (signal_id);

CREATE TABLE agent_logs (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    record_key TEXT    NOT NULL UNIQUE,
    agent_id   TEXT,
    event_type TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    metadata   TEXT    NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);
CREATE INDEX agent_logs_agent_id ON agent_logs (agent_id, id);

CREATE TABLE signals (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    record_key TEXT    NOT NULL UNIQUE,
    signal_id  TEXT    NOT NULL UNIQUE,
    symbol     TEXT    NOT NULL,
    direction  TEXT    NOT NULL,
    confidence REAL,
    sl         REAL,
    tp         REAL,
    payload    TEXT    NOT NULL DEFAULT '{}',
    outcome    TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE equity_snapshots (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    record_key TEXT    NOT NULL UNIQUE,
    agent_id   TEXT    NOT NULL,
    balance    REAL    NOT NULL,
    equity     REAL    NOT NULL,
    margin     REAL    NOT NULL,
    profit     REAL    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX equity_snapshots_agent_time ON equity_snapshots (agent_id, created_at);

CREATE TABLE ticks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    record_key TEXT    NOT NULL UNIQUE,
    agent_id   TEXT    NOT NULL,
    symbol     TEXT    NOT NULL,
    bid        REAL    NOT NULL,
    ask        REAL    NOT NULL,
    time       INTEGER NOT NULL
);
CREATE INDEX ticks_agent_symbol_time ON ticks (agent_id, symbol, time);
