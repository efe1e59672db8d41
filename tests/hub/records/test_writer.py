"""The record writer: batches, spools while the database is away, replays without duplicates."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import pytest

from hub.records import (
    LogRecord,
    RecordWriter,
    Spool,
    Store,
    TickRecord,
    TradeClosed,
    TradeOpened,
    TradeUpdated,
)
from hub.records.postgres import PostgresStore
from hub.records.records import Record
from hub.records.sqlite import SqliteStore
from tests.hub.records.helpers import ROOT
from tests.timing import eventually, units


def tick(i: int) -> TickRecord:
    return TickRecord(agent_id="agent_1", symbol="XAUUSD", bid=2650.0, ask=2650.3, time=i)


def log_record(i: int) -> LogRecord:
    return LogRecord(agent_id="agent_1", event_type="command", message=f"m{i}", record_key=f"k{i}")


WriterFactory = Callable[..., RecordWriter]


@pytest.fixture
async def writer_for() -> AsyncIterator[WriterFactory]:
    """Build writers with short retry times; any left open are closed after the test."""
    made: list[RecordWriter] = []

    def make(store: Store, spool_dir: Path, **kw: int) -> RecordWriter:
        writer = RecordWriter(
            store,
            Spool(spool_dir),
            retry_initial=units(0.5),
            retry_max=units(2),
            spool_interval=units(0.5),
            **kw,
        )
        made.append(writer)
        return writer

    yield make
    for writer in made:
        await writer.close(flush=False)


@pytest.fixture
def dead_pg_url() -> Iterator[str]:
    """A Postgres URL whose port refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"postgresql://postgres@127.0.0.1:{sock.getsockname()[1]}/none"


async def keys_in(store: Store) -> tuple[set[str], set[str]]:
    ticks = {t.record_key for t in await store.ticks("agent_1", limit=10_000)}
    logs = {x.record_key for x in await store.logs(limit=10_000)}
    return ticks, logs


async def test_records_are_written_in_batches(
    writer_for: WriterFactory, store: Store, tmp_path: Path
) -> None:
    writer = writer_for(store, tmp_path / "spool", batch_size=500)
    await writer.start()
    for i in range(2_500):
        writer.submit(tick(i))
    writer.submit(log_record(1))
    async with asyncio.timeout(units(100)):
        await writer.wait_written()
    assert await store.count("ticks") == 2_500
    assert await store.count("agent_logs") == 1
    health = writer.health()
    assert (health.engine, health.healthy, health.written) == (store.engine, True, 2_501)
    assert (health.queue_depth, health.spool_records, health.spool_bytes) == (0, 0, 0)
    await writer.close()


async def test_submit_never_blocks_while_the_database_is_down(
    writer_for: WriterFactory, dead_pg_url: str, tmp_path: Path
) -> None:
    writer = writer_for(PostgresStore(dead_pg_url), tmp_path / "spool", capacity=2_000)
    await writer.start()
    assert not inspect.iscoroutinefunction(writer.submit)
    for i in range(5_000):
        writer.submit(tick(i))  # a plain call: nothing here can wait for the database
    assert writer.health().queue_depth == 5_000
    await eventually(
        lambda: writer.health().spool_records == 5_000,
        timeout=units(100),
        message="5000 records in the spool",
    )
    health = writer.health()
    assert (health.healthy, health.queue_depth, health.dropped) == (False, 0, 0)
    assert health.last_error is not None and "postgres" in health.last_error
    assert health.spool_bytes == (tmp_path / "spool" / "records.jsonl").stat().st_size > 0
    await writer.close()


async def test_a_record_being_spooled_is_counted_once_in_the_writer_s_health(
    dead_pg_url: str, tmp_path: Path
) -> None:
    """/api/status and the metrics add the queue and the spool: a record the spool thread
    has written and the queue still holds (the append not yet returned) is counted once."""
    import threading

    appended, release = threading.Event(), threading.Event()

    class SlowSpool(Spool):
        def append(self, records: Sequence[Record]) -> None:
            super().append(records)  # written and fsync'd: the spool counts them now
            appended.set()
            release.wait(timeout=30)

    writer = RecordWriter(PostgresStore(dead_pg_url), SlowSpool(tmp_path / "spool"),
                          retry_initial=units(0.5), retry_max=units(2))  # fmt: skip
    await writer.start()
    try:
        for i in range(10):
            writer.submit(tick(i))
        await eventually(lambda: appended.is_set(), message="the spool's append")
        health = writer.health()
        assert health.queue_depth + health.spool_records == 10, health
    finally:
        release.set()
        await writer.close(flush=False)


async def test_a_spool_left_by_a_cancelled_writer_is_replayed_once(
    writer_for: WriterFactory, store: Store, dead_pg_url: str, tmp_path: Path
) -> None:
    records: list[Record] = [r for i in range(1_000) for r in (tick(i), log_record(i))]
    crashed = writer_for(PostgresStore(dead_pg_url), tmp_path / "spool")
    await crashed.start()
    for r in records:
        crashed.submit(r)
    await eventually(
        lambda: crashed.health().spool_records == len(records),
        timeout=units(100),
        message="every record in the spool",
    )
    await crashed.close(flush=False)

    await store.write(records[:700])  # a replay that crashed after its first batches
    writer = writer_for(store, tmp_path / "spool", batch_size=300)
    await writer.start()
    async with asyncio.timeout(units(100)):
        await writer.wait_written()
    assert await keys_in(store) == ({f"tick:agent_1:XAUUSD:{i}" for i in range(1_000)},
                                    {f"k{i}" for i in range(1_000)})  # fmt: skip
    assert await store.count("ticks") == await store.count("agent_logs") == 1_000
    assert writer.health().spool_records == 0
    assert (tmp_path / "spool" / "records.jsonl").stat().st_size == 0
    await writer.close()


_KILLED_HUB = """
import asyncio, sys
from pathlib import Path
from hub.records import LogRecord, RecordWriter, Spool, TickRecord
from hub.records.postgres import PostgresStore

async def main() -> None:
    writer = RecordWriter(PostgresStore(sys.argv[1]), Spool(Path(sys.argv[2])), retry_initial=0.05)
    await writer.start()
    for i in range(500):
        writer.submit(TickRecord(agent_id="agent_1", symbol="XAUUSD", bid=1.0, ask=1.1, time=i))
        writer.submit(LogRecord(agent_id="agent_1", event_type="t", message="", record_key=f"k{i}"))
    while writer.health().spool_records < 1000:
        await asyncio.sleep(0.01)
    print("spooled", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_hub_killed_with_spooled_records_replays_them_on_restart(
    writer_for: WriterFactory, store: Store, dead_pg_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _KILLED_HUB, dead_pg_url, str(tmp_path / "spool"),
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(units(150)):
            assert await proc.stdout.readline() == b"spooled\n"
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()

    writer = writer_for(store, tmp_path / "spool")
    await writer.start()
    async with asyncio.timeout(units(100)):
        await writer.wait_written()
    assert await keys_in(store) == ({f"tick:agent_1:XAUUSD:{i}" for i in range(500)},
                                    {f"k{i}" for i in range(500)})  # fmt: skip
    assert await store.count("ticks") == await store.count("agent_logs") == 500
    await writer.close()


async def test_a_full_queue_goes_through_the_spool_in_order(
    writer_for: WriterFactory, store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hub.records.writer")
    writer = writer_for(store, tmp_path / "spool", capacity=20, batch_size=7)
    await writer.start()
    steps: list[Record] = [
        TradeOpened(agent_id="agent_1", client_order_id="c1", symbol="XAUUSD", action="buy",
                    lots=0.01, stop_loss=2648.5),
        TradeUpdated(agent_id="agent_1", client_order_id="c1", status="open", ticket=1001,
                     open_price=2650.3, open_time=1),
        TradeClosed(agent_id="agent_1", ticket=1001, symbol="XAUUSD", action="buy", lots=0.01,
                    open_price=2650.3, close_price=2652.0, profit=1.7, open_time=1, close_time=2),
    ]  # fmt: skip
    for n, step in enumerate(steps):
        writer.submit(step)
        for i in range(60):  # over capacity: these and the next step go through the spool
            writer.submit(tick(n * 100 + i))
        await eventually(
            lambda: writer.health().queue_depth == 0,
            timeout=units(100),
            message="an empty queue",
        )
    async with asyncio.timeout(units(100)):
        await writer.wait_written()
    [trade] = await store.trades()
    assert (trade.status, trade.ticket, trade.profit) == ("closed", 1001, 1.7)
    assert await store.count("ticks") == 180
    assert "spool replayed" in caplog.text
    await writer.close()


async def test_a_record_the_database_refuses_is_skipped_and_counted(
    writer_for: WriterFactory, store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = TradeOpened(
        agent_id="agent_1", client_order_id="c1", symbol="XAUUSD",
        action="hold",  # type: ignore[arg-type]
        lots=0.01,
    )  # fmt: skip
    writer = writer_for(store, tmp_path / "spool")
    await writer.start()
    for r in (tick(1), bad, tick(2)):
        writer.submit(r)
    async with asyncio.timeout(units(100)):
        await writer.wait_written()
    assert await store.count("ticks") == 2
    assert await store.count("agent_trades") == 0
    health = writer.health()
    assert (health.rejected, health.written, health.healthy) == (1, 2, True)
    assert "refused by the database" in caplog.text
    await writer.close()


async def test_close_spools_what_the_down_database_did_not_take(
    writer_for: WriterFactory, dead_pg_url: str, tmp_path: Path
) -> None:
    writer = writer_for(PostgresStore(dead_pg_url), tmp_path / "spool")
    await writer.start()
    for i in range(10):
        writer.submit(tick(i))
    await writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.submit(tick(11))
    spool = Spool(tmp_path / "spool")
    spool.open()
    assert spool.records == 10
    spool.close()


async def test_records_past_four_times_capacity_are_dropped_and_counted(
    writer_for: WriterFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStore(tmp_path / "db.sqlite")
    writer = writer_for(store, tmp_path / "spool", capacity=5)
    await writer.start()
    for i in range(30):  # all before the writer's task gets a turn
        writer.submit(tick(i))
    assert (writer.health().queue_depth, writer.health().dropped) == (20, 10)
    assert "dropped" in caplog.text
    async with asyncio.timeout(units(100)):
        await writer.wait_written()
    assert [t.time for t in await store.ticks("agent_1")] == list(range(20))
    await writer.close()
    await store.close()
