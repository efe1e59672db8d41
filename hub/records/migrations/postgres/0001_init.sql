-- MT4 Hub records (Postgres, schema trading). Times are epoch milliseconds; JSON columns are jsonb.
-- Every row has a unique record_key so a replayed record never doubles a row.

CREATE TABLE trading.agent_trades (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_key      TEXT    NOT NULL UNIQUE,
    agent_id        TEXT    NOT NULL,
    ticket          BIGINT,
    symbol          TEXT    NOT NULL,
    action          TEXT    NOT NULL CHECK (action IN ('buy', 'sell')),
    lots            DOUBLE PRECISION NOT NULL,
    open_price      DOUBLE PRECISION,
    close_price     DOUBLE PRECISION,
    stop_loss       DOUBLE PRECISION,
    take_profit     DOUBLE PRECISION,
    profit          DOUBLE PRECISION,
    open_time       BIGINT,
    close_time      BIGINT,
    signal_id       TEXT,
    client_order_id TEXT UNIQUE,
    status          TEXT    NOT NULL
                    CHECK (status IN ('accepted', 'open', 'closed', 'rejected', 'failed')),
    comment         TEXT    NOT NULL DEFAULT '',
    created_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX agent_trades_agent_ticket ON trading.agent_trades (agent_id, ticket);
CREATE INDEX agent_trades_agent_id ON trading.agent_trades (agent_id, id);
CREATE INDEX agent_trades_signal_id ON trading.agent_trades (signal_id);

CREATE TABLE trading.agent_logs (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_key TEXT    NOT NULL UNIQUE,
    agent_id   TEXT,
    event_type TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    metadata   JSONB   NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE INDEX agent_logs_agent_id ON trading.agent_logs (agent_id, id);

CREATE TABLE trading.signals (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_key TEXT    NOT NULL UNIQUE,
    signal_id  TEXT    NOT NULL UNIQUE,
    symbol     TEXT    NOT NULL,
    direction  TEXT    NOT NULL,
    confidence DOUBLE PRECISION,
    sl         DOUBLE PRECISION,
    tp         DOUBLE PRECISION,
    payload    JSONB   NOT NULL DEFAULT '{}',
    outcome    JSONB,
    created_at BIGINT NOT NULL
);

CREATE TABLE trading.equity_snapshots (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_key TEXT    NOT NULL UNIQUE,
    agent_id   TEXT    NOT NULL,
    balance    DOUBLE PRECISION NOT NULL,
    equity     DOUBLE PRECISION NOT NULL,
    margin     DOUBLE PRECISION NOT NULL,
    profit     DOUBLE PRECISION NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX equity_snapshots_agent_time ON trading.equity_snapshots (agent_id, created_at);

CREATE TABLE trading.ticks (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_key TEXT    NOT NULL UNIQUE,
    agent_id   TEXT    NOT NULL,
    symbol     TEXT    NOT NULL,
    bid        DOUBLE PRECISION NOT NULL,
    ask        DOUBLE PRECISION NOT NULL,
    time       BIGINT NOT NULL
);
CREATE INDEX ticks_agent_symbol_time ON trading.ticks (agent_id, symbol, time);
