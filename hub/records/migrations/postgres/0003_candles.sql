-- Candles (hub/candles.py): one row per agent, symbol, timeframe and bar open time (epoch ms).
CREATE TABLE trading.candles (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id TEXT    NOT NULL,
    symbol   TEXT    NOT NULL,
    tf       TEXT    NOT NULL CHECK (tf IN ('M1', 'M5', 'M15', 'H1')),
    t        BIGINT  NOT NULL,
    o        DOUBLE PRECISION NOT NULL,
    h        DOUBLE PRECISION NOT NULL,
    l        DOUBLE PRECISION NOT NULL,
    c        DOUBLE PRECISION NOT NULL,
    ticks    INTEGER NOT NULL,
    UNIQUE (agent_id, symbol, tf, t)
);
