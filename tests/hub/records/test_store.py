"""The store suite, run on both engines (``store`` is parametrised: sqlite, postgres)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.records import (
    CandleRecord,
    EquitySnapshot,
    LogRecord,
    QueryError,
    SignalRecord,
    Store,
    StoreConfigError,
    TickRecord,
    TradeClosed,
    TradeOpened,
    TradeUpdated,
    open_store,
)
from hub.records.records import Record
from hub.records.sqlite import SqliteStore
from hub.records.store import TABLES


def opened(coid: str = "ml-77", **kw: object) -> TradeOpened:
    fields: dict[str, object] = dict(
        agent_id="agent_1",
        client_order_id=coid,
        symbol="XAUUSD",
        action="buy",
        lots=0.01,
        stop_loss=2648.5,
        take_profit=2660.0,
        comment="ml",
        created_at=1_000,
    )
    fields.update(kw)
    return TradeOpened(**fields)  # type: ignore[arg-type]


def closed(ticket: int = 1001, **kw: object) -> TradeClosed:
    fields: dict[str, object] = dict(
        agent_id="agent_1",
        ticket=ticket,
        symbol="XAUUSD",
        action="buy",
        lots=0.01,
        open_price=2650.3,
        close_price=2655.3,
        profit=5.0,
        open_time=2_000,
        close_time=9_000,
    )
    fields.update(kw)
    return TradeClosed(**fields)  # type: ignore[arg-type]


def tick(i: int, agent: str = "agent_1") -> TickRecord:
    return TickRecord(agent_id=agent, symbol="XAUUSD", bid=2650.0 + i, ask=2650.3 + i, time=i)


async def test_migrations_are_idempotent(store: Store) -> None:
    assert await store.migrate() == []
    await store.close()
    await store.open()  # a restart: runs the migrations again
    assert await store.migrate() == []
    for table in TABLES:
        assert await store.count(table) == 0


async def test_a_trade_is_recorded_from_acceptance_to_close_with_profit(store: Store) -> None:
    await store.write([opened()])
    [row] = await store.trades()
    assert (row.status, row.ticket, row.client_order_id) == ("accepted", None, "ml-77")

    fill = TradeUpdated(
        agent_id="agent_1", client_order_id="ml-77", status="open", ticket=1001,
        open_price=2650.3, open_time=2_000,
    )  # fmt: skip
    await store.write([fill])
    [row] = await store.trades()
    assert (row.status, row.ticket, row.open_price) == ("open", 1001, 2650.3)

    await store.write([closed(profit=5.0)])
    [row] = await store.trades()
    assert row.status == "closed"
    assert (row.close_price, row.profit, row.close_time) == (2655.3, 5.0, 9_000)
    assert (row.stop_loss, row.take_profit, row.comment) == (2648.5, 2660.0, "ml")


async def test_a_trade_status_never_moves_back(store: Store) -> None:
    fill = TradeUpdated(agent_id="agent_1", client_order_id="ml-77", status="open", ticket=1001)
    await store.write([opened(), fill, closed()])
    await store.write([opened(), fill, closed(), fill])  # a replay of all of it
    [row] = await store.trades()
    assert row.status == "closed"
    failed = TradeUpdated(agent_id="agent_1", client_order_id="ml-77", status="failed")
    await store.write([failed])
    [row] = await store.trades()
    assert row.status == "closed"


async def test_a_position_closed_outside_the_hub_gets_its_own_row(store: Store) -> None:
    await store.write([closed(ticket=555, comment="manual", profit=-3.5)])
    await store.write([closed(ticket=555, comment="manual", profit=-3.5)])
    [row] = await store.trades()
    assert (row.ticket, row.status, row.profit, row.client_order_id) == (555, "closed", -3.5, None)


async def test_a_signal_links_to_the_trade_it_caused(store: Store) -> None:
    signal = SignalRecord(
        signal_id="sig-1", symbol="XAUUSD", direction="long", confidence=0.78,
        sl=2640.0, tp=2660.0, payload={"model": "v3"},
    )  # fmt: skip
    outcome = {"signal_id": "sig-1", "routes": [{"agent": "agent_1", "outcome": "executed"}]}
    routed = SignalRecord(signal_id="sig-1", symbol="XAUUSD", direction="long", outcome=outcome)
    await store.write([signal, opened("sig-1:agent_1", signal_id="sig-1"), routed])
    await store.write([opened("other")])

    [sig] = await store.signals()
    assert (sig.signal_id, sig.confidence, sig.payload, sig.outcome) == (
        "sig-1", 0.78, {"model": "v3"}, outcome,
    )  # fmt: skip
    [trade] = await store.trades(signal_id=sig.signal_id)
    assert trade.client_order_id == "sig-1:agent_1"
    assert [s.signal_id for s in await store.signals(agent="agent_1")] == ["sig-1"]
    assert await store.signals(agent="agent_3") == []


async def test_ten_thousand_ticks_are_written_in_batches(store: Store) -> None:
    ticks = [tick(i) for i in range(10_000)]
    for start in range(0, len(ticks), 1000):
        await store.write(ticks[start : start + 1000])
    assert await store.count("ticks") == 10_000
    rows = await store.ticks("agent_1", limit=10_000)
    assert [r.time for r in rows] == list(range(10_000))
    assert rows[123].bid == 2650.0 + 123
    await store.write(ticks[:1000])  # replayed: nothing doubles
    assert await store.count("ticks") == 10_000


async def test_trades_logs_and_signals_page_newest_first_by_id_cursor(store: Store) -> None:
    await store.write(
        [opened(f"c{i}", agent_id="agent_1" if i % 2 else "agent_2") for i in range(7)]
    )
    await store.write(
        [LogRecord(agent_id="agent_1", event_type="command", message=f"m{i}") for i in range(5)]
    )
    await store.write(
        [SignalRecord(signal_id=f"s{i}", symbol="XAUUSD", direction="long") for i in range(5)]
    )

    first = await store.trades(limit=3)
    assert [t.client_order_id for t in first] == ["c6", "c5", "c4"]
    second = await store.trades(limit=3, before=first[-1].id)
    assert [t.client_order_id for t in second] == ["c3", "c2", "c1"]
    last = await store.trades(limit=3, before=second[-1].id)
    assert [t.client_order_id for t in last] == ["c0"]
    assert [t.client_order_id for t in await store.trades(agent="agent_1")] == ["c5", "c3", "c1"]

    logs = await store.logs(agent="agent_1", limit=2)
    assert [x.message for x in logs] == ["m4", "m3"]
    logs = await store.logs(agent="agent_1", limit=2, before=logs[-1].id)
    assert [x.message for x in logs] == ["m2", "m1"]
    signals = await store.signals(limit=4)
    assert [s.signal_id for s in signals] == ["s4", "s3", "s2", "s1"]
    assert [s.signal_id for s in await store.signals(before=signals[-1].id)] == ["s0"]


async def test_equity_since_returns_an_agents_snapshots_oldest_first(store: Store) -> None:
    snaps = [
        EquitySnapshot(agent_id=a, balance=200, equity=200 + t, margin=1, profit=t, created_at=t)
        for t in range(1_000, 6_000, 1_000)
        for a in ("agent_1", "agent_2")
    ]
    await store.write(list(reversed(snaps)))
    rows = await store.equity("agent_1", since_ms=3_000)
    assert [(r.created_at, r.equity) for r in rows] == [
        (3_000, 3_200),
        (4_000, 4_200),
        (5_000, 5_200),
    ]
    assert [r.created_at for r in await store.equity("agent_2", limit=2)] == [1_000, 2_000]


async def test_a_replayed_batch_doubles_no_row(store: Store) -> None:
    batch: list[Record] = [
        opened(),
        LogRecord(agent_id="agent_1", event_type="risk", message="accepted", metadata={"a": 1}),
        SignalRecord(signal_id="s", symbol="XAUUSD", direction="long"),
        EquitySnapshot(agent_id="agent_1", balance=1, equity=1, margin=0, profit=0),
        tick(1),
        candle(60_000, 1, 2650.0),
    ]
    await store.write(batch)
    await store.write(batch)
    for table in TABLES:
        assert await store.count(table) == 1, table


async def test_bad_query_parameters_name_the_field(store: Store) -> None:
    with pytest.raises(QueryError, match="limit"):
        await store.trades(limit=0)
    with pytest.raises(QueryError, match="before"):
        await store.logs(before=-1)
    with pytest.raises(QueryError, match="table"):
        await store.count("users; drop table ticks")


def test_open_store_picks_the_engine_from_the_url(tmp_path: Path) -> None:
    default = open_store(None)
    assert isinstance(default, SqliteStore) and default.path == Path("data/mt4hub.db")
    custom = open_store(f"sqlite:///{tmp_path}/x.db")
    assert isinstance(custom, SqliteStore) and custom.path == tmp_path / "x.db"
    assert open_store("postgresql://u@127.0.0.1:5432/db").engine == "postgres"
    with pytest.raises(StoreConfigError, match="DATABASE_URL"):
        open_store("mysql://u@h/db")
    with pytest.raises(StoreConfigError, match="DATABASE_URL"):
        open_store("sqlite://")


async def test_sqlite_uses_a_wal_file(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "wal.db")
    await s.write([tick(1)])
    assert (tmp_path / "wal.db-wal").exists()
    await s.close()


def candle(t: int, ticks: int, c: float, tf: str = "M1", symbol: str = "XAUUSD") -> CandleRecord:
    return CandleRecord(
        agent_id="agent_1", symbol=symbol, tf=tf, t=t, o=2650.0, h=max(2650.0, c),
        l=min(2650.0, c), c=c, ticks=ticks,
    )  # fmt: skip


async def test_a_candle_is_one_row_that_only_moves_forward(store: Store) -> None:
    await store.write([candle(60_000, 1, 2650.0), candle(60_000, 2, 2652.0)])
    await store.write([candle(60_000, 3, 2649.0)])
    await store.write([candle(60_000, 2, 2652.0)])  # a replay of an older update
    [bar] = await store.candles("agent_1", "XAUUSD", "M1")
    assert (bar.t, bar.o, bar.h, bar.l, bar.c, bar.ticks) == (
        60_000,
        2650.0,
        2650.0,
        2649.0,
        2649.0,
        3,
    )
    assert await store.count("candles") == 1


async def test_candles_page_back_by_open_time_oldest_first(store: Store) -> None:
    await store.write([candle(t * 60_000, 1, 2650.0 + t) for t in range(1, 11)])
    await store.write([candle(60_000, 1, 1.0, tf="M5"), candle(60_000, 1, 1.0, symbol="EURUSD")])
    page = await store.candles("agent_1", "XAUUSD", "M1", limit=3)
    assert [b.t // 60_000 for b in page] == [8, 9, 10]
    page = await store.candles("agent_1", "XAUUSD", "M1", limit=3, before=page[0].t)
    assert [b.t // 60_000 for b in page] == [5, 6, 7]
    assert await store.candles("agent_2", "XAUUSD", "M1") == []


async def test_last_candles_are_the_newest_bar_of_each_symbol_and_timeframe(store: Store) -> None:
    await store.write([candle(t * 60_000, 1, 2650.0 + t) for t in range(1, 4)])
    await store.write([candle(0, 5, 1.0, tf="H1"), candle(60_000, 2, 1.1, symbol="EURUSD")])
    last = await store.last_candles("agent_1")
    got = sorted((b.symbol, b.tf, b.t, b.ticks) for b in last)
    assert got == [
        ("EURUSD", "M1", 60_000, 2),
        ("XAUUSD", "H1", 0, 5),
        ("XAUUSD", "M1", 180_000, 1),
    ]
