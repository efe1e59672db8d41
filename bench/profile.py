"""Where the hub's time goes at one fan-out point: ``python -m bench.profile``.

Starts the hub as the benchmark does (its own core, the load generator on the other),
connects N subscribers, warms up, then injects ticks for a few seconds with the hub's
event-loop thread under cProfile, and prints the functions by own time. Defaults: the
batched N=2000 point at 1,000,000 msg/s (the target BENCHMARKS.md lists as not met).
Options: ``--n``, ``--offered`` (msg/s), ``--mode one-frame|batch``, ``--seconds``,
``--top``, ``--out`` (the .prof file, for snakeviz or pstats).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import shutil
import tempfile
from pathlib import Path

from bench.configs import fanout_config
from bench.fanout import _connect, _warm
from bench.rig import FULL, Rig


async def profile(args: argparse.Namespace, out: Path, work: Path) -> None:
    rig = Rig(work)
    os.sched_setaffinity(0, rig.client_core)
    try:
        load = await rig.load()
        server = await rig.server("hub", fanout_config(), name="hub-profile")
        await _connect(server, load, "hub", args.n, args.mode == "batch")
        await _warm(server, load, FULL, args.n, args.mode, "hub")
        await server.request(
            cmd="inject",
            rate=args.offered / args.n,
            duration=args.seconds,
            profile=str(out),
            within=args.seconds * 20 + 60,
        )
    finally:
        await rig.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--offered", type=float, default=1_000_000)
    parser.add_argument("--mode", choices=("one-frame", "batch"), default="batch")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", default="hub.prof")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    work = Path(tempfile.mkdtemp(prefix="mt4hub-profile-"))  # configs and process logs
    asyncio.run(profile(args, out, work))
    shutil.rmtree(work, ignore_errors=True)
    stats = pstats.Stats(str(out))
    stats.sort_stats("tottime").print_stats(args.top)
    print(f"profile written to {out}")


if __name__ == "__main__":
    main()
