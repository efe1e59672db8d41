"""A real Postgres outage mid-stream, on a private cluster started by scripts/services.sh."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from hub.records import LogRecord, RecordWriter, Spool, TickRecord
from hub.records.postgres import PostgresStore
from tests.hub.records.helpers import run_services, run_services_async
from tests.timing import eventually, units


async def test_postgres_stopped_mid_stream_loses_and_doubles_nothing(
    private_pg: tuple[str, Path], tmp_path: Path
) -> None:
    url, services = private_pg
    store = PostgresStore(url, connect_timeout=units(20), command_timeout=units(50))
    writer = RecordWriter(
        store,
        Spool(tmp_path / "spool"),
        batch_size=100,
        retry_initial=units(1),
        retry_max=units(3),
        spool_interval=units(1),
    )
    await writer.start()
    sent = 0

    async def produce() -> None:
        nonlocal sent
        while True:
            for _ in range(20):
                writer.submit(TickRecord(agent_id="a", symbol="XAUUSD", bid=1, ask=2, time=sent))
                writer.submit(LogRecord(agent_id="a", event_type="t", message="m",
                                        record_key=f"log-{sent}"))  # fmt: skip
                sent += 1
            await asyncio.sleep(units(0.5))

    producer = asyncio.create_task(produce())
    try:
        await eventually(
            lambda: writer.health().written > 0, timeout=units(100), message="a first write"
        )
        await run_services_async("pause", services, "postgres")
        await eventually(
            lambda: writer.health().spool_records > 200,
            timeout=units(100),
            message="records spooled while Postgres is down",
        )
        await asyncio.sleep(units(20))  # down for a few seconds, records keep coming
        assert not writer.health().healthy
        await run_services_async("start", services, "postgres")
        await eventually(
            lambda: writer.health().healthy, timeout=units(100), message="the writer to recover"
        )
        await asyncio.sleep(units(5))
        producer.cancel()
        async with asyncio.timeout(units(150)):
            await writer.wait_written()
    finally:
        producer.cancel()
        await writer.close()

    conn = await asyncpg.connect(url, timeout=10)
    try:
        ticks = await conn.fetch("SELECT record_key FROM trading.ticks")
        logs = await conn.fetch("SELECT record_key FROM trading.agent_logs")
    finally:
        await conn.close()
    assert len(ticks) == len(logs) == sent
    assert {r["record_key"] for r in ticks} == {f"tick:a:XAUUSD:{i}" for i in range(sent)}
    assert {r["record_key"] for r in logs} == {f"log-{i}" for i in range(sent)}
    await store.close()


def test_services_script_starts_pauses_and_stops_postgres(private_pg: tuple[str, Path]) -> None:
    url, services = private_pg
    env = (services / "env").read_text()
    assert f"export TEST_DATABASE_URL={url}\n" == env
    assert url.startswith("postgresql://postgres@127.0.0.1:") and url.endswith("/mt4hub_test")
    run_services("start", services, "postgres")  # idempotent: same cluster, same URL
    assert (services / "env").read_text() == env
    root = Path((services / "pg.root").read_text().strip())
    run_services("pause", services, "postgres")
    assert (services / "env").read_text() == ""
    assert (root / "data").is_dir()
    run_services("stop", services, "postgres")
    assert not root.exists()
