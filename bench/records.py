"""Records: rows/s into SQLite and Postgres while publishing continues, and publish
latency with and without the writer.

Each engine runs in its own process (``python -m bench.records``, pinned to the server
core): the real hub (``hub.app.create_app`` and its lifespan, a bridge on a closed port
so nothing is polled) with ``DATABASE_URL`` set. Ticks go through the real publish path,
``await hub.publisher.tick(...)``, at a controlled rate (:func:`bench._ticks.inject`);
the hub's journal submits one ``TickRecord`` per tick to its ``RecordWriter``. Each
tick's ``time`` is a counter, so every row's key is unique and none is skipped as a
duplicate. Ticks due are published together at most every millisecond
(:func:`_paced`: under uvloop a shorter ``asyncio.sleep`` returns at once, and the
loop would spin on the one core the hub has).

At each rate, two runs:

- **writer on**: as the hub runs; rows written per second (``writer.health().written``),
  the largest queue and spool seen, then how long the writer takes to finish after
  publishing stops;
- **writer off**: the same hub with ``hub.journal._submit = lambda record: None`` (for
  the benchmark only: the journal's records go nowhere), the baseline for latency.

Latency is the wall time of ``await hub.publisher.tick(...)`` (µs) and the lateness of
each publication against its schedule (ms), which includes the event-loop time the
writer takes (batch encoding, asyncpg, SQLite's thread competing for the one core).

SQLite is a fresh file in the run's temporary directory. Postgres is a fresh database on
the cluster of ``TEST_DATABASE_URL``, else on a throwaway cluster started with
``scripts/services.sh`` and stopped after; when neither works the result says
"not available" instead of failing the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import uvloop

from bench._control import serve_commands
from bench._proc import ROOT, ChildError
from bench._stats import summarize
from bench._ticks import SYMBOLS
from bench.configs import fanout_config, write
from bench.rig import Rig, Scale

__all__ = ["EngineRecords", "RecordsResult", "RecordsRun", "main", "run_records"]

_AGENT = "agent_1"
_SERVICES = ROOT / "scripts" / "services.sh"
_SAMPLE = 0.05  # s between two looks at the writer's health
_TICK_GAP = 0.001  # s: the shortest sleep between two bursts of due ticks (uvloop's timer)


class _Plan(msgspec.Struct, frozen=True, kw_only=True):
    rates: tuple[float, ...]  # offered ticks/s
    seconds: float  # publishing window per run
    drain: float  # at most this long for the writer to finish after a window
    start_postgres: bool  # start a cluster when TEST_DATABASE_URL is unset


_PLANS = {
    "full": _Plan(
        rates=(1_000.0, 10_000.0, 50_000.0, 100_000.0), seconds=2.5, drain=20.0, start_postgres=True
    ),
    "quick": _Plan(
        rates=(1_000.0, 10_000.0, 100_000.0), seconds=1.5, drain=10.0, start_postgres=True
    ),
    "smoke": _Plan(rates=(500.0,), seconds=0.3, drain=5.0, start_postgres=False),
}


class RecordsRun(msgspec.Struct, frozen=True, kw_only=True):
    rate: float  # offered ticks/s
    writer: bool  # False: the journal's submit replaced by a no-op
    seconds: float  # the publishing window
    published: int
    cpu_pct: float  # the hub process, its SQLite thread included
    call_us: dict[str, float | int | None]  # wall time of `await hub.publisher.tick()`
    late_ms: dict[str, float | int | None]  # publication time minus scheduled time
    written: int  # rows written during the window
    rows_per_s: float  # during the window
    max_queue: int
    max_spool: int
    dropped: int
    drain_s: float | None  # after the window until everything was written; None: not in time
    sustained_rows_per_s: float | None  # rows / (window + drain), when drained


class EngineRecords(msgspec.Struct, frozen=True, kw_only=True):
    engine: str  # sqlite | postgres
    database: str  # where the rows went, and its durability settings
    error: str | None = None  # "not available: ..." or what failed
    runs: list[RecordsRun] = []

    @property
    def available(self) -> bool:
        return self.error is None or not self.error.startswith("not available")


class RecordsResult(msgspec.Struct, frozen=True, kw_only=True):
    engines: list[EngineRecords]

    def failure(self) -> str | None:
        """What failed (not: what was not available), for the run's errors."""
        failed = [f"{e.engine}: {e.error}" for e in self.engines if e.available and e.error]
        return "; ".join(failed) or None


class _Unavailable(Exception):
    """The engine cannot be measured here (no cluster, no server binaries)."""


# -- the parent side ---------------------------------------------------------------


async def run_records(rig: Rig, scale: Scale, say: Callable[[str], None]) -> RecordsResult:
    plan = _PLANS.get(scale.name, _PLANS["full"])
    config = str(write(rig.work, "records.yml", fanout_config()))
    engines = [await _measure_sqlite(rig, plan, config, say)]
    try:
        async with _postgres(rig, plan) as (url, database):
            engines.append(await _measure(rig, plan, config, "postgres", url, database, say))
    except _Unavailable as exc:
        engines.append(EngineRecords(engine="postgres", database="", error=f"not available: {exc}"))
        say(f"   postgres: not available: {exc}")
    return RecordsResult(engines=engines)


async def _measure_sqlite(
    rig: Rig, plan: _Plan, config: str, say: Callable[[str], None]
) -> EngineRecords:
    path = rig.work / "records-sqlite" / "mt4hub.db"
    database = "a fresh file (WAL, synchronous=NORMAL)"
    return await _measure(rig, plan, config, "sqlite", f"sqlite:///{path}", database, say)


async def _measure(
    rig: Rig,
    plan: _Plan,
    config: str,
    engine: str,
    url: str,
    database: str,
    say: Callable[[str], None],
) -> EngineRecords:
    data_dir = rig.work / f"records-{engine}"
    data_dir.mkdir(parents=True, exist_ok=True)
    runs: list[RecordsRun] = []
    try:
        child = await rig.process(
            "bench.records",
            "--config",
            config,
            "--database-url",
            url,
            "--data-dir",
            str(data_dir),
            name=f"records-{engine}",
            core=rig.server_core,
        )
    except ChildError as exc:
        return EngineRecords(engine=engine, database=database, error=str(exc))
    try:
        if child.ready.get("engine") != engine:
            raise ChildError(f"the hub opened {child.ready.get('engine')!r}, not {engine!r}")
        for rate in plan.rates:
            for writer in (True, False):
                reply = await child.request(
                    within=plan.seconds + plan.drain + 30,
                    cmd="measure",
                    rate=rate,
                    seconds=plan.seconds,
                    drain=plan.drain,
                    writer=writer,
                )
                run = msgspec.convert(reply["run"], RecordsRun)
                runs.append(run)
                say(_line(engine, run))
    except ChildError as exc:
        return EngineRecords(engine=engine, database=database, error=str(exc), runs=runs)
    finally:
        await rig.stop(child)
    return EngineRecords(engine=engine, database=database, runs=runs)


def _line(engine: str, run: RecordsRun) -> str:
    late = run.late_ms
    return (
        f"  {engine:9} {run.rate:>8,.0f} ticks/s  writer {'on ' if run.writer else 'off'}"
        f"  rows/s {run.rows_per_s:>9,.0f}  queue max {run.max_queue:>6}"
        f"  spool max {run.max_spool:>6}  late p99 {late['p99']} ms  cpu {run.cpu_pct:.0f}%"
    )


@contextlib.asynccontextmanager
async def _postgres(rig: Rig, plan: _Plan) -> AsyncIterator[tuple[str, str]]:
    """(URL of a fresh database, what it is), dropped after; the cluster too if we started it."""
    url = os.environ.get("TEST_DATABASE_URL")
    source = "TEST_DATABASE_URL"
    services: Path | None = None
    try:
        if not url:
            if not plan.start_postgres:
                raise _Unavailable("TEST_DATABASE_URL is not set (a smoke run starts no cluster)")
            services = rig.work / "services"
            await _services("start", services, rig.logs)
            url = _read_url(services / "env")
            source = "a throwaway cluster (scripts/services.sh)"
        import asyncpg

        name = f"mt4hub_bench_{secrets.token_hex(4)}"
        try:
            admin = await asyncpg.connect(url, timeout=10)
        except (OSError, asyncpg.PostgresError) as exc:
            raise _Unavailable(f"{source}: cannot connect: {exc}") from exc
        try:
            settings = [
                f"{s}={await admin.fetchval(f'SHOW {s}')}" for s in ("fsync", "synchronous_commit")
            ]
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        try:
            parts = urlsplit(url)
            yield urlunsplit(parts._replace(path=f"/{name}")), f"{source} ({', '.join(settings)})"
        finally:
            admin = await asyncpg.connect(url, timeout=10)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
    finally:
        if services is not None:
            await _services("stop", services, rig.logs)


async def _services(command: str, directory: Path, logs: Path, service: str = "postgres") -> None:
    """``scripts/services.sh COMMAND DIR SERVICE`` (may install it the first time).

    Its output goes to a file: the server it starts inherits the descriptors, so a pipe
    would never reach end of file.
    """
    log = logs / f"services-{service}-{command}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            str(_SERVICES), command, str(directory), service, stdout=out, stderr=out
        )
    try:
        async with asyncio.timeout(300):
            await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise _Unavailable(f"scripts/services.sh {command}: not done within 300 s") from None
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        raise _Unavailable(f"scripts/services.sh {command} failed: {' / '.join(tail)}")


def _read_url(env_file: Path) -> str:
    for line in env_file.read_text().splitlines():
        if line.startswith("export TEST_DATABASE_URL="):
            return line.split("=", 1)[1].strip()
    raise _Unavailable(f"{env_file}: no TEST_DATABASE_URL (Postgres did not start)")


# -- the child side: one hub, measured ------------------------------------------


async def _paced(publish: Callable[[int, float], Any], rate: float, seconds: float) -> float:
    """Call ``await publish(i, scheduled)`` ``rate * seconds`` times on schedule
    (``scheduled``: epoch seconds); a backlog goes out at once. Returns the seconds taken."""
    total = max(1, round(rate * seconds))
    start = time.monotonic()
    wall = time.time()
    sent = 0
    while sent < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)
        while sent < due:
            await publish(sent, wall + sent / rate)
            sent += 1
        await asyncio.sleep(max(_TICK_GAP, start + sent / rate - time.monotonic()))
    return time.monotonic() - start


class _HubBench:
    """Publishes ticks into one running hub and watches its record writer."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self._time = time.time_ns() // 1000  # tick times: a counter, so every row key differs

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        if command.get("cmd") != "measure":
            raise ValueError(f"cmd: expected 'measure', got {command.get('cmd')!r}")
        run = await self.measure(
            float(command["rate"]),
            float(command["seconds"]),
            float(command["drain"]),
            writer=bool(command["writer"]),
        )
        return {"run": msgspec.to_builtins(run)}

    async def measure(
        self, rate: float, seconds: float, drain: float, *, writer: bool
    ) -> RecordsRun:
        from hub.bridge.models import Tick

        hub = self.hub
        journal = hub.journal
        submit = journal._submit
        if not writer:
            journal._submit = lambda record: None  # benchmark only: the baseline without records
        tick = hub.publisher.tick
        call_us: list[float] = []
        late_ms: list[float] = []
        clock = time.perf_counter

        async def publish(i: int, scheduled: float) -> None:
            self._time += 1
            symbol = SYMBOLS[i % len(SYMBOLS)]
            bid = 100.0 + (i % 97) * 0.01
            started = clock()
            await tick(_AGENT, Tick(symbol=symbol, bid=bid, ask=bid + 0.02, time=self._time))
            call_us.append((clock() - started) * 1e6)
            late_ms.append((time.time() - scheduled) * 1e3)

        peak = {"queue": 0, "spool": 0}

        async def sample() -> None:
            while True:
                health = hub.writer.health()
                peak["queue"] = max(peak["queue"], health.queue_depth)
                peak["spool"] = max(peak["spool"], health.spool_records)
                await asyncio.sleep(_SAMPLE)

        before = hub.writer.health()
        cpu = time.process_time()
        sampler = asyncio.create_task(sample())
        try:
            took = await _paced(publish, rate, seconds)
            cpu = time.process_time() - cpu
            during = hub.writer.health()
            drained_at = time.monotonic()
            drain_s: float | None = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain):
                    await hub.writer.wait_written()
                drain_s = round(time.monotonic() - drained_at, 3)
        finally:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            journal._submit = submit
        after = hub.writer.health()
        written = during.written - before.written
        return RecordsRun(
            rate=rate,
            writer=writer,
            seconds=round(took, 3),
            published=len(call_us),
            cpu_pct=round(100 * cpu / took, 1),
            call_us=summarize(call_us),
            late_ms=summarize(late_ms),
            written=written,
            rows_per_s=round(written / took, 1),
            max_queue=peak["queue"],
            max_spool=peak["spool"],
            dropped=after.dropped - before.dropped,
            drain_s=drain_s,
            sustained_rows_per_s=None
            if drain_s is None
            else round((after.written - before.written) / (took + drain_s), 1),
        )


async def _serve(args: argparse.Namespace) -> None:
    from hub.app import create_app
    from hub.config import load_config

    env = {**os.environ, "DATABASE_URL": args.database_url, "HUB_DATA_DIR": args.data_dir}
    app = create_app(load_config(args.config), env=env, tune_gc=True)  # as mt4hub run
    hub = app.state.hub
    async with app.router.lifespan_context(app):
        await serve_commands({"engine": hub.store.engine}, _HubBench(hub).handle)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.records", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--data-dir", required=True, help="the hub's spool goes here")
    uvloop.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
