"""Smoke run of every benchmark (``python -m bench --smoke``): the scripts work, numbers appear.

No timed assertions: only that each benchmark ran without error and produced figures.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from bench._stats import percentile, summarize
from bench._ticks import event_frame, inject, tick_fields
from bench.delivery_cost import measure
from bench.fanout import SERIES, FanoutResult, Point
from bench.records import EngineRecords, RecordsResult, RecordsRun
from bench.report import targets
from bench.results import Results, decode

ROOT = Path(__file__).resolve().parents[2]


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str], out: Path) -> None:
        self.proc = proc
        self.out = out
        self.results: Results = decode((out / "latest.json").read_bytes())


def _bench(out: Path, *args: str) -> Run:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            *args,
            "--out",
            str(out),
            "--markdown",
            str(out / "BENCHMARKS.md"),
            "--plot",
            str(out / "plot.png"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert (out / "latest.json").exists(), proc.stdout + proc.stderr
    return Run(proc, out)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _bench(tmp_path_factory.mktemp("bench"))


def test_smoke_run_succeeds_without_failures(run: Run) -> None:
    assert run.proc.returncode == 0, run.proc.stdout[-3000:] + run.proc.stderr[-3000:]
    assert run.results.errors == {}


def test_fanout_measures_hub_and_every_baseline(run: Run) -> None:
    fan = run.results.fanout
    assert fan is not None
    measured = {(p.server, p.mode) for p in fan.points}
    assert measured == set(SERIES)
    for p in fan.points:
        assert p.delivered > 0 and p.samples > 0 and p.p99_ms is not None, p


def test_websockets_is_measured_at_every_rate_of_the_one_frame_sweep(run: Run) -> None:
    fan = run.results.fanout
    assert fan is not None
    rates = {(p.n, p.offered) for p in fan.points if p.server == "websockets"}
    assert rates == {(n, float(r)) for n in (10,) for r in (500, 1000)}
    assert all(p.loop_busy_p99_ms is not None for p in fan.points), "per-iteration timing"


def test_busy_machine_variant_measures_hub_and_websockets(run: Run) -> None:
    fan = run.results.fanout
    assert fan is not None
    assert {(p.server, p.busy) for p in fan.busy} == {("hub", True), ("websockets", True)}
    assert "Busy machine" in run.proc.stdout


def test_redis_path_measures_cross_instance_latency_and_publish_rate(run: Run) -> None:
    redis = run.results.redis_path
    assert redis is not None, run.results.errors
    assert redis.point.delivered > 0 and redis.point.p99_ms is not None
    assert redis.publish and redis.max_publish > 0


def test_light_load_is_measured_in_both_frame_modes(run: Run) -> None:
    fan = run.results.fanout
    assert fan is not None
    assert sorted(p.mode for p in fan.light) == ["batch", "one-frame"]
    assert all(p.p99_ms is not None for p in fan.light)


def test_slow_consumer_compares_runs_with_and_without(run: Run) -> None:
    runs = run.results.slow_consumer
    assert runs is not None and len(runs) == 2
    for slow in runs:
        assert slow.without.samples > 0 and slow.with_slow.samples > 0
        assert slow.with_slow.rss_mb > 0


def test_idle_reports_memory_per_connection(run: Run) -> None:
    idle = run.results.idle
    assert idle is not None
    assert idle.rss_after_mb > 0 and idle.n > 0


def test_round_trip_times_trades_and_closes(run: Run) -> None:
    rtt = run.results.round_trip
    assert rtt is not None
    assert rtt.errors == 0, rtt.first_error
    assert rtt.trade["samples"] and rtt.close["samples"]


def test_risk_check_runs_the_whole_pipeline(run: Run) -> None:
    risk = run.results.risk
    assert risk is not None
    assert risk.allowed, risk.check
    assert risk.mean_us > 0


def test_poller_reports_cpu_and_staleness(run: Run) -> None:
    poller = run.results.poller
    assert poller is not None
    assert poller.polls_per_s > 0 and poller.poll_errors == 0
    assert poller.staleness_ms["samples"] and poller.age_ms["samples"]


def test_churn_measures_pings_and_ticks_quiet_and_under_attack(run: Run) -> None:
    churn = run.results.churn
    assert churn is not None
    assert [w.attack for w in churn.windows] == [False, True]
    for window in churn.windows:
        assert window.ping_ms["samples"] and window.ticks_delivered > 0, window
    assert churn.attack.churn_ops > 0 and churn.quiet.churn_ops == 0
    assert any(t.startswith("subscription churn") for t, _, _ in targets(run.results))


def test_markdown_and_plot_are_written(run: Run) -> None:
    text = (run.out / "BENCHMARKS.md").read_text()
    for heading in ("## Machine", "## How to run", "## Targets", "## What is left and why"):
        assert heading in text
    assert "websockets-batch" in text and "### Records" in text
    assert (run.out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_records_writes_sqlite_rows_while_publishing(run: Run) -> None:
    records = run.results.records
    assert records is not None
    sqlite = records.engines[0]
    assert (sqlite.engine, sqlite.error) == ("sqlite", None)
    on, off = sqlite.runs
    assert on.writer and not off.writer and on.rate == off.rate
    assert on.published > 0 and on.written > 0 and on.dropped == 0
    assert on.drain_s is not None and on.sustained_rows_per_s
    assert off.published > 0 and off.written == 0  # the no-op submit: no records at all
    assert on.late_ms["p99"] is not None and off.call_us["p99"] is not None


def test_records_postgres_is_measured_or_reported_not_available(run: Run) -> None:
    records = run.results.records
    assert records is not None
    postgres = records.engines[1]
    assert postgres.engine == "postgres"
    if postgres.error is None:
        assert [r.writer for r in postgres.runs] == [True, False]
        assert postgres.runs[0].written > 0
    else:
        assert postgres.error.startswith("not available"), postgres.error
        assert "records" not in run.results.errors


def test_only_replaces_its_section_and_keeps_the_others(run: Run, tmp_path: Path) -> None:
    (tmp_path / "latest.json").write_bytes((run.out / "latest.json").read_bytes())
    again = _bench(tmp_path, "--only", "risk")
    assert again.proc.returncode == 0, again.proc.stdout[-3000:] + again.proc.stderr[-3000:]
    before, after = run.results, again.results
    assert after.risk is not None and before.risk is not None
    assert after.risk.iterations == before.risk.iterations
    assert (after.records, after.fanout, after.started) == (
        before.records,
        before.fanout,
        before.started,
    )
    assert list(after.rerun) == ["risk"] and "--only risk" in after.rerun["risk"]
    assert "Sections re-run alone" in (tmp_path / "BENCHMARKS.md").read_text()


def _records_run(*, writer: bool, late_p99: float, spool: int = 0) -> RecordsRun:
    late = {"samples": 10, "p50": 0.1, "p99": late_p99, "max": late_p99}
    return RecordsRun(
        rate=1000.0,
        writer=writer,
        seconds=1.0,
        published=1000,
        cpu_pct=20.0,
        call_us={"samples": 10, "p50": 10.0, "p99": 20.0, "max": 30.0},
        late_ms=late,
        written=1000 if writer else 0,
        rows_per_s=1000.0 if writer else 0.0,
        max_queue=5,
        max_spool=spool,
        dropped=0,
        drain_s=0.01,
        sustained_rows_per_s=990.0,
    )


@pytest.mark.parametrize(
    ("late_p99_on", "spool", "met"),
    [(1.5, 0, True), (5.0, 0, False), (1.5, 2000, False)],
)
def test_records_target_needs_no_spool_and_little_added_latency(
    late_p99_on: float, spool: int, met: bool
) -> None:
    engine = EngineRecords(
        engine="sqlite",
        database="a file",
        runs=[
            _records_run(writer=True, late_p99=late_p99_on, spool=spool),
            _records_run(writer=False, late_p99=1.0),
        ],
    )
    results = Results(scale="smoke", started="now", records=RecordsResult(engines=[engine]))
    (row,) = [t for t in targets(results) if t[0].startswith("records")]
    assert row[2] is met


def test_tables_are_printed(run: Run) -> None:
    assert "| target | measured |" in run.proc.stdout
    assert "vs broadcaster" in run.proc.stdout


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert summarize([]) == {"samples": 0, "p50": None, "p99": None, "max": None}


def test_saturated_when_delivery_falls_behind_or_latency_runs_away() -> None:
    ok = Point(
        server="hub",
        mode="one-frame",
        n=10,
        rate=100.0,
        offered=1000.0,
        delivered=1000.0,
        fraction=1.0,
        p50_ms=1.0,
        p99_ms=5.0,
        max_ms=5.0,
        samples=10,
        cpu_pct=10.0,
        rss_mb=50.0,
        lag_ms=0.0,
    )
    assert not ok.saturated
    assert msgspec.structs.replace(ok, delivered=800.0).saturated
    assert msgspec.structs.replace(ok, p99_ms=1500.0).saturated


def _point(server: str, offered: float, p99: float, delivered: float | None = None) -> Point:
    return Point(
        server=server,
        mode="one-frame",
        n=2000,
        rate=offered / 2000,
        offered=offered,
        delivered=offered if delivered is None else delivered,
        fraction=1.0,
        p50_ms=1.0,
        p99_ms=p99,
        max_ms=p99,
        samples=10,
        cpu_pct=10.0,
        rss_mb=50.0,
        lag_ms=0.0,
    )


@pytest.mark.parametrize(
    ("hub_p99", "met"),
    [((20.0, 30.0), True), ((20.0, 45.0), False)],
)
def test_p99_target_compares_each_unsaturated_rate_with_websockets(
    hub_p99: tuple[float, float], met: bool
) -> None:
    points = [
        _point("hub", 20_000, hub_p99[0]),
        _point("hub", 50_000, hub_p99[1]),
        _point("hub", 200_000, 900.0, delivered=100_000),  # saturated: not compared
        _point("websockets", 20_000, 25.0),
        _point("websockets", 50_000, 40.0),
        _point("websockets", 200_000, 5000.0, delivered=20_000),
    ]
    results = Results(scale="smoke", started="now", fanout=FanoutResult(points=points, light=[]))
    (row,) = [t for t in targets(results) if "p99 at each unsaturated rate" in t[0]]
    assert row[2] is met
    assert row[1].startswith("2 of 2" if met else "1 of 2")


def test_baseline_frames_carry_the_tick_and_its_scheduled_time() -> None:
    symbol, bid, ask = tick_fields(5)
    frame = event_frame("agent:agent_1:ticks", 6, symbol, bid, ask, 1_700_000_000_123_456)
    assert frame.startswith('{"type":"event","ch":"agent:agent_1:ticks","seq":6,')
    assert '"time":1700000000123456}' in frame
    assert 100 <= len(frame) <= 160


async def test_inject_publishes_rate_times_duration() -> None:
    seen: list[int] = []

    async def publish(i: int, symbol: str, bid: float, ask: float, time_us: int) -> None:
        seen.append(time_us)

    stats = await inject(publish, 200.0, 0.05)
    assert stats.sent == len(seen) == 10
    assert seen == sorted(seen) and seen[1] - seen[0] == 5000


async def test_inject_rejects_a_rate_that_is_not_positive() -> None:
    async def publish(i: int, symbol: str, bid: float, ask: float, time_us: int) -> None:
        raise AssertionError("must not publish")

    with pytest.raises(ValueError, match="rate and duration"):
        await inject(publish, 0.0, 1.0)


def test_profile_prints_the_fan_out_path(tmp_path: Path) -> None:
    out = tmp_path / "hub.prof"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.profile", "--n", "5", "--offered", "500",
         "--seconds", "0.3", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert out.exists()
    assert "group.py" in proc.stdout and "on_publication" in proc.stdout


@pytest.mark.parametrize("mode", ["one-frame", "batch"])
async def test_delivery_cost_measures_the_in_process_path(mode: str) -> None:
    assert await measure(10, 20, mode) > 0
