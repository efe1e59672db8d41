"""``python -m bench``: run every benchmark, print the tables, write the results.

Writes ``bench/results/latest.json``, ``BENCHMARKS.md`` and ``bench/plot.png``; the
processes' configs and logs go to a temporary directory, kept (and named) on failure.
Exit status 1 when a benchmark failed (the others still run and are reported).

With ``--only NAME...`` the named sections replace theirs in the existing
``latest.json`` (the others are kept as they are, and the re-run is noted), and
``BENCHMARKS.md`` is rendered again from the whole.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import uvloop

from bench import docs, report
from bench._proc import ROOT
from bench.churn import run_churn
from bench.commands import run_risk, run_round_trip
from bench.fanout import (
    FanoutResult,
    SlowConsumerResult,
    run_busy,
    run_fanout,
    run_idle,
    run_slow_consumer,
)
from bench.poller import run_poller
from bench.records import run_records
from bench.redis_path import run_redis_path
from bench.results import Results, decode, encode
from bench.rig import FULL, QUICK, SMOKE, Rig, Scale

__all__ = ["BENCHMARKS", "main"]

BENCHMARKS = (
    "risk",
    "fanout",
    "busy",
    "slow",
    "idle",
    "rtt",
    "poller",
    "records",
    "churn",
    "redis",
)
_FIELDS = {  # benchmark -> its section of Results
    "risk": "risk",
    "fanout": "fanout",
    "busy": "fanout",  # the busy-machine variant is part of the fan-out section
    "slow": "slow_consumer",
    "idle": "idle",
    "rtt": "round_trip",
    "poller": "poller",
    "records": "records",
    "churn": "churn",
    "redis": "redis_path",
}
_FALLBACK_SLOW_RATE = 20.0  # ticks/s when the sweep did not run

log = logging.getLogger("bench")


def _say(text: str) -> None:
    print(text, flush=True)


def _slow_rate(results: Results, scale: Scale) -> float:
    """Half the hub's one-frame saturation rate at the slow-consumer N, if measured."""
    fan = results.fanout
    points = (
        []
        if fan is None
        else [
            p for p in fan.points if (p.server, p.mode, p.n) == ("hub", "one-frame", scale.slow_n)
        ]
    )
    if not points:
        return _FALLBACK_SLOW_RATE if scale.slow_n >= 100 else scale.light_rate
    best = max(p.delivered for p in points)
    return round(max(1.0, best / 2 / scale.slow_n), 1)


async def _slow(rig: Rig, scale: Scale, results: Results) -> list[SlowConsumerResult]:
    """At the slow-consumer N (few bytes reach the stalled socket), then few subscribers at a
    high tick rate (its buffers fill within a second and the hub must hold back)."""
    big = await run_slow_consumer(rig, scale, scale.slow_n, _slow_rate(results, scale), _say)
    n, rate = scale.slow_fast
    return [big, await run_slow_consumer(rig, scale, n, rate, _say)]


async def _fanout(rig: Rig, scale: Scale, results: Results) -> FanoutResult:
    """The sweep; a busy-machine variant measured before is kept (it has its own name)."""
    fan = await run_fanout(rig, scale, _say)
    previous = results.fanout
    return fan if previous is None else msgspec.structs.replace(fan, busy=previous.busy)


async def _busy(rig: Rig, scale: Scale, results: Results) -> FanoutResult:
    """The busy-machine variant, added to the fan-out section."""
    busy = await run_busy(rig, scale, _say)
    return msgspec.structs.replace(results.fanout or FanoutResult(points=[], light=[]), busy=busy)


async def _run(args: argparse.Namespace, scale: Scale, results: Results) -> None:
    rig = Rig(args.work)
    os.sched_setaffinity(0, rig.client_core)
    steps: dict[str, Callable[[], Awaitable[Any]]] = {
        "risk": lambda: asyncio.to_thread(run_risk, scale),
        "fanout": lambda: _fanout(rig, scale, results),
        "busy": lambda: _busy(rig, scale, results),
        "slow": lambda: _slow(rig, scale, results),
        "idle": lambda: run_idle(rig, scale, _say),
        "rtt": lambda: run_round_trip(rig, scale),
        "poller": lambda: run_poller(rig, scale),
        "records": lambda: run_records(rig, scale, _say),
        "churn": lambda: run_churn(rig, scale),
        "redis": lambda: run_redis_path(rig, scale, _say),
    }
    try:
        for name in args.only or BENCHMARKS:
            _say(f"== {name}")
            started = time.monotonic()
            try:
                result = await steps[name]()
                setattr(results, _FIELDS[name], result)
                failure = result.failure() if name == "records" else None
                if failure:
                    results.errors[name] = failure
            except Exception as exc:  # report it, keep running the others
                traceback.print_exc()
                results.errors[name] = f"{type(exc).__name__}: {exc}"
            _say(f"   ({time.monotonic() - started:.1f} s)")
    finally:
        await rig.close()


def _previous(path: Path) -> Results | None:
    """The results an ``--only`` run updates, or None when there are none to update."""
    try:
        return decode(path.read_bytes())
    except FileNotFoundError:
        return None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        _say(f"{path}: not readable as results ({exc}): writing a new one with only --only's")
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a shorter run (~3 minutes)")
    size.add_argument("--smoke", action="store_true", help="tiny N, seconds: proves it works")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only these, of: {', '.join(BENCHMARKS)}; their sections replace theirs in"
        " the existing latest.json, the others are kept",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "bench" / "results",
        help="where latest.json goes",
    )
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--plot", type=Path, default=ROOT / "bench" / "plot.png")
    args = parser.parse_args(argv)
    args.work = Path(tempfile.mkdtemp(prefix="mt4hub-bench-"))  # configs and process logs
    scale = SMOKE if args.smoke else QUICK if args.quick else FULL
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    shown = ["make bench   # = .venv/bin/python -m bench"]
    if argv is None and sys.argv[1:]:
        shown = [shlex.join(["python", "-m", "bench", *sys.argv[1:]])]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    previous = _previous(args.out / "latest.json") if args.only else None
    results = (
        Results(scale=scale.name, started=now, machine=docs.machine_info(), commands=shown)
        if previous is None
        else previous
    )
    for name in args.only or ():
        results.errors.pop(name, None)
    started = time.monotonic()
    uvloop.run(_run(args, scale, results))
    seconds = round(time.monotonic() - started, 1)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    if previous is None:
        results.seconds = seconds
        results.machine["load average at end"] = load
    else:
        note = f"{now}, scale `{scale.name}`, {seconds:.0f} s, load average at end {load}"
        for name in args.only or ():
            results.rerun[name] = f"`{shown[0]}` ({note})"
    for table in report.tables(results):
        _say("\n" + table)
    _say("\n" + report.targets_table(results))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_bytes(encode(results))
    plot = docs.plot(results, args.plot)
    relative_plot = plot if plot is None or plot.is_relative_to(ROOT) else None
    args.markdown.write_text(docs.markdown(results, relative_plot))
    _say(f"\nwrote {args.out / 'latest.json'}, {args.markdown}, {plot}")
    for name, error in results.errors.items():
        _say(f"FAILED {name}: {error}")
    if results.errors:
        _say(f"process logs kept in {args.work}")
        return 1
    shutil.rmtree(args.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
