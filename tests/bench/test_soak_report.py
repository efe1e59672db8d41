"""The soak's memory figures: the RSS slope and the allocation sites that grew."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx

from bench._proc import ROOT
from bench._traced_hub import growth, read_trace
from bench.soak import Sample, rss_slope
from bench.soak import _get as soak_get


def _sample(t: float, rss: float) -> Sample:
    return Sample(
        t=t, rss_mb=rss, threads=1, fds=1, tasks=None, connections=0, records_queue=0,
        spooled=0, order_events_published=0, order_events_received_min=0,
    )  # fmt: skip


def test_the_slope_is_least_squares_in_mb_per_hour() -> None:
    rising = [
        _sample(t, 100 + t / 3600 * 2.0 + (0.5 if t % 120 else -0.5)) for t in range(0, 3601, 60)
    ]
    assert abs(rss_slope(rising) - 2.0) < 0.05
    assert rss_slope([_sample(t, 80.0) for t in range(0, 600, 5)]) == 0.0
    assert rss_slope([_sample(0, 80.0)]) == 0.0


def test_growth_names_the_sites_and_types_that_grew(tmp_path: Path) -> None:
    lines = [
        {"t": 60, "traced": 1, "types": {"dict": 10, "tuple": 5},
         "sites": {f"{ROOT}/hub/a.py:3": [1000, 10], f"{ROOT}/hub/b.py:9": [500, 5]}},
        {"t": 120, "traced": 2, "types": {"dict": 30, "tuple": 5, "HubError": 4},
         "sites": {f"{ROOT}/hub/a.py:3": [1000, 10], f"{ROOT}/hub/b.py:9": [9000, 50],
                   f"{ROOT}/hub/c.py:1": [100, 1]}},
    ]  # fmt: skip
    path = tmp_path / "trace.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + '\n{"t": 180, "sit')  # torn
    read = read_trace(path)
    assert len(read) == 2
    sites, types = growth(read[0], read[1])
    assert sites == [("hub/b.py:9", 8500, 45), ("hub/c.py:1", 100, 1)]
    assert types == [("dict", 20), ("HubError", 4)]


def test_shrunk_bounds_reach_every_count_bound_of_the_hub(tmp_path: Path) -> None:
    """``--bounds N`` (a traced soak): each count bound of docs/reliability.md's table is N
    in the hub process, so they all fill within minutes. In a child process: it changes
    module constants."""
    code = f"""
from pathlib import Path
from bench._traced_hub import shrink_bounds
shrink_bounds(7)
import hub.bridge.client as client
from hub.trading.coordination import LocalCoordination
from hub.trading.history import ClosedTrades
coord = LocalCoordination("i", Path({str(tmp_path)!r}))
assert (client.MAGIC_MAX, ClosedTrades.capacity) == (7, 7)
assert coord.capacity == 7 and coord._idempotency.capacity == 7
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


async def test_a_sample_survives_a_connection_the_hub_closed_unanswered() -> None:
    """An idle keep-alive connection the server closes just as the next request goes out
    (uvicorn's 5 s timeout against a 5 s sampling period; a traced hub frozen by a
    snapshot) ended a 100-minute soak with ``httpx.ReadError``. A read of the soak's own
    figures is retried once on a fresh connection."""
    served: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        served.append(1)
        if len(served) > 1:
            writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{"ok":true}')
            await writer.drain()
        writer.close()  # the first request: closed unanswered

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        assert (await soak_get(http, "/api/status")).json() == {"ok": True}
    assert len(served) == 2
