-- Candles (hub/candles.py): one row per agent, symbol, timeframe and bar open time (epoch ms).
CREATE TABLE candles (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id TEXT    NOT NULL,
    symbol   TEXT    NOT NULL,
    tf       TEXT    NOT NULL CHECK (tf IN ('M1', 'M5', 'M15', 'H1')),
    t        INTEGER NOT NULL,
    o        REAL    NOT NULL,
    h        REAL    NOT NULL,
    l        REAL    NOT NULL,
    c        REAL    NOT NULL,
    ticks    INTEGER NOT NULL,
    UNIQUE (agent_id, symbol, tf, t)
);
