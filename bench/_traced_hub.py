"""``mt4hub`` under tracemalloc: what a soak's hub allocates and keeps, over time.

``python -m bench._traced_hub TRACE EVERY -- run --config ...`` starts :mod:`tracemalloc`
(with ``MT4HUB_TRACE_BOUNDS=N`` in the environment, after :func:`shrink_bounds`)
(``TRACE_FRAMES`` frames a trace), then a daemon thread that every ``EVERY`` seconds takes a
snapshot and appends one JSON line to ``TRACE``: the seconds since start, the traced bytes,
the Python objects alive by type (``gc``), and the allocation sites (``file:line``) with
their bytes and block counts. Then it runs ``hub.cli.main`` with the remaining arguments,
unchanged. :func:`growth` diffs two of those lines. Nothing in the hub knows about this.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

from bench._proc import ROOT

__all__ = ["BOUNDS_ENV", "growth", "read_trace", "shrink_bounds"]

TRACE_FRAMES = 1
BOUNDS_ENV = "MT4HUB_TRACE_BOUNDS"  # set: every count bound shrunk to it (shrink_bounds)
_SITES = 400  # the largest allocation sites kept per line
_TYPES = 200


def _filters() -> list[tracemalloc.Filter]:
    return [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap*>"),
        tracemalloc.Filter(False, "<unknown>"),
    ]


def _line(start: float) -> dict[str, Any]:
    snap = tracemalloc.take_snapshot().filter_traces(_filters())
    stats = snap.statistics("lineno")[:_SITES]
    sites = {f"{s.traceback[0].filename}:{s.traceback[0].lineno}": [s.size, s.count] for s in stats}
    del snap, stats  # its traces are tuples: not to be counted among the hub's objects
    # Frozen objects (gc.freeze at start-up) are not in get_objects: only what came after.
    types = Counter(type(o).__qualname__ for o in gc.get_objects())
    return {
        "t": round(time.monotonic() - start, 1),
        "traced": tracemalloc.get_traced_memory()[0],
        "types": dict(types.most_common(_TYPES)),
        "sites": sites,
    }


def _writer(path: Path, every: float, start: float) -> None:
    while True:
        time.sleep(every)
        try:
            line = _line(start)
        except Exception as exc:  # a diagnostic must not kill the hub
            line = {"t": round(time.monotonic() - start, 1), "error": repr(exc)}
        with path.open("a") as out:
            out.write(json.dumps(line) + "\n")


def read_trace(path: Path) -> list[dict[str, Any]]:
    """The lines :mod:`bench._traced_hub` wrote (an unfinished last line is skipped)."""
    lines: list[dict[str, Any]] = []
    if not path.exists():
        return lines
    for raw in path.read_text().splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if "sites" in line:
            lines.append(line)
    return lines


def growth(
    first: dict[str, Any], last: dict[str, Any], top: int = 10
) -> tuple[list[tuple[str, int, int]], list[tuple[str, int]]]:
    """(sites, types) that grew most from ``first`` to ``last``.

    Sites are ``(file:line, bytes gained, blocks gained)``, types ``(name, objects
    gained)``, largest first; a site below ``_SITES`` in one line counts as 0 there.
    """

    def rel(site: str) -> str:
        if site.startswith(f"{ROOT}/"):
            return site[len(str(ROOT)) + 1 :]
        for marker in ("/site-packages/", "/lib/python3"):
            if marker in site:
                return site.split(marker, 1)[1]
        return site

    sites = [
        (rel(k), v[0] - first["sites"].get(k, [0, 0])[0], v[1] - first["sites"].get(k, [0, 0])[1])
        for k, v in last["sites"].items()
    ]
    sites.sort(key=lambda s: -s[1])
    types = [(k, v - first["types"].get(k, 0)) for k, v in last["types"].items()]
    types.sort(key=lambda t: -t[1])
    return [s for s in sites[:top] if s[1] > 0], [t for t in types[:top] if t[1] > 0]


def shrink_bounds(n: int) -> None:
    """Set the count bounds of docs/reliability.md's table (outcomes, hub-close marks,
    claims, fills not seen closed, magic numbers) to ``n``: they
    fill within minutes, so a short traced run shows what still grows once all are full."""
    import hub.bridge.client as client
    from hub.trading.coordination import LocalCoordination
    from hub.trading.history import ClosedTrades

    client.MAGIC_MAX = n
    ClosedTrades.capacity = n
    defaults = LocalCoordination.__init__.__kwdefaults__
    assert defaults is not None and "capacity" in defaults
    defaults["capacity"] = n


def main(argv: list[str]) -> int:
    trace, every, sep, *rest = argv
    if sep != "--":
        raise SystemExit("usage: python -m bench._traced_hub TRACE EVERY -- MT4HUB-ARGS")
    if BOUNDS_ENV in os.environ:
        shrink_bounds(int(os.environ[BOUNDS_ENV]))
    tracemalloc.start(TRACE_FRAMES)
    start = time.monotonic()
    Path(trace).write_text("")
    threading.Thread(target=_writer, args=(Path(trace), float(every), start), daemon=True).start()
    from hub.cli import main as hub_main

    return hub_main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
