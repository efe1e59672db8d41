"""Soak: a real hub process under subscribers, a trade/close loop and bridge faults, over time.

``python -m bench.soak --duration 120 --subscribers 200`` (also ``make soak``) starts two
standalone simulated EA Bridges, a hub process on them (SQLite records in a temp dir), N
WebSocket subscribers in this process (orders, ticks, status, summary), a steady
trade-then-close loop on ``agent_1``, and every ``--fault-every`` seconds a bridge fault on
``agent_1`` for ``--fault-for`` seconds (down, error, garbage in turn). Every
``--sample-every`` seconds it prints the hub's RSS, threads and open files (``/proc``), its
connections, records queue and spool (``/api/status``) and order events (``/metrics``).
Nothing is added to the hub for this: an asyncio task count is shown only if the hub
reports one. ``--trace FILE`` runs the hub under ``tracemalloc`` (``bench/_traced_hub.py``)
and the report names the allocation sites and object types that grew over the second half
(a traced hub is slower and its RSS includes the tracing: measure RSS without it).

At the end: RSS growth after warm-up and the least-squares slope of RSS over the second
half of the run (MB/hour), every subscriber's order events against the events
the hub published (lost = published - received, per subscriber), seq gaps, the commands
sent and whether each answered command has its order event, and every error seen. Exit
status 1 when an order event was lost or an error seen.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import msgspec
import websockets

from bench._proc import ROOT
from bench._traced_hub import BOUNDS_ENV, growth, read_trace
from bench.configs import closed_port
from hub.bridge.sim_server import SimServer, start_sim
from hub.config import SymbolSpec

__all__ = ["Sample", "SoakReport", "main", "run_soak"]

TOKEN = "soak-admin-token"
_AUTH = {"Authorization": f"Bearer {TOKEN}"}
_FAULTS = ("down", "error", "garbage")
_CHANNELS = ["agent:*:orders", "agent:*:ticks", "agent:*:status", "summary"]


class Sample(msgspec.Struct, kw_only=True):
    t: float  # seconds since the start of the run
    rss_mb: float
    threads: int
    fds: int
    tasks: int | None  # only when the hub reports one
    connections: int
    records_queue: int
    spooled: int
    order_events_published: int
    order_events_received_min: int


class SoakReport(msgspec.Struct, kw_only=True):
    duration: float
    subscribers: int
    warmup: float
    samples: list[Sample]
    rss_warm_mb: float  # the first sample at or after the warm-up
    rss_end_mb: float
    rss_growth_mb: float  # max after warm-up minus rss_warm_mb
    rss_slope_mb_per_hour: float  # least-squares slope of RSS over the second half
    growing_sites: list[tuple[str, int, int]]  # --trace: (file:line, bytes, blocks) gained
    growing_types: list[tuple[str, int]]  # --trace: (type, objects) gained
    trace_span: tuple[float, float] | None  # --trace: the hub's seconds the diff spans
    commands: dict[str, int]  # "trade 200", "close 503 agent_offline", ... -> count
    first_refusal: dict[str, str]  # "trade 422 risk_rejected" -> the first such message
    order_events_published: int
    order_events_lost: int  # summed over subscribers, plus answered commands without event
    answered_without_event: list[str]
    silent_commands: dict[str, int]  # refused commands that published no order event
    seq_gaps: int
    faults: list[str]
    offline_seen: int  # agent_1 status transitions to offline seen by subscriber 0
    online_again: int
    errors: list[str]


class _Subscriber:
    """One WebSocket client: counts order events by (channel, epoch, seq), checks seq gaps."""

    def __init__(self, url: str, keep_events: bool) -> None:
        self.url = url
        self.keep_events = keep_events
        self.orders: set[tuple[str, str, int]] = set()
        self.events: list[dict[str, Any]] = []
        self.last: dict[str, tuple[str, int]] = {}
        self.gaps = 0
        self.errors: list[str] = []
        self.status: list[str] = []  # agent_1 status values in order
        self.ready = asyncio.Event()
        self.done = False

    async def run(self) -> None:
        try:
            async with websockets.connect(self.url, max_size=None, open_timeout=30) as ws:
                await ws.send(json.dumps({"op": "subscribe", "id": "s", "channels": _CHANNELS}))
                async for frame in ws:
                    for line in str(frame).split("\n"):
                        self._on(json.loads(line))
        except websockets.ConnectionClosed as exc:
            if not self.done:
                self.errors.append(f"connection closed: {exc}")
        except (OSError, TimeoutError) as exc:
            self.errors.append(f"connection failed: {exc!r}")
        finally:
            self.ready.set()

    def _on(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "subscribed" and msg.get("id") == "s":
            self.ready.set()
        elif kind == "error":
            self.errors.append(f"error message: {msg['error']}")
        elif kind in ("snapshot", "event"):
            ch, seq, epoch = msg["ch"], msg["seq"], msg.get("epoch", "")
            last = self.last.get(ch)
            if kind == "event" and last is not None and last[0] == epoch and seq != last[1] + 1:
                self.gaps += 1
            if kind == "event" or last is None or last[0] != epoch or seq > last[1]:
                self.last[ch] = (epoch, seq)
            if ch.endswith(":orders"):
                self.orders.add((ch, epoch, seq))
                if self.keep_events:
                    self.events.append(msg["data"])
            elif ch == "agent:agent_1:status":
                self.status.append(msg["data"]["status"])


class _Trader:
    """Trade 0.01 lot on agent_1, then close it; every command and its HTTP status kept."""

    def __init__(self, http: httpx.AsyncClient, period: float) -> None:
        self.http = http
        self.period = period
        self.sent: list[tuple[str, str, int, str | None]] = []  # kind, key, status, code
        self.errors: list[str] = []
        self.open: list[int] = []
        self.first_refusal: dict[str, str] = {}  # "trade 422 risk_rejected" -> its message

    async def run(self, stop_at: float) -> None:
        loop = asyncio.get_running_loop()
        for i in itertools.count():
            if loop.time() >= stop_at:
                return
            try:
                await self._step(i)
            except httpx.HTTPError as exc:
                self.errors.append(f"trader: {exc!r}")
            await asyncio.sleep(self.period)

    async def _step(self, i: int) -> None:
        # Its own tickets, and any the hub lists: a close answered 404 during a garbage
        # fault (the bridge's /positions row unreadable) leaves the position open.
        listed = await self.http.get("/api/agents/agent_1/positions")
        held = (
            [p["ticket"] for p in listed.json()["positions"]] if listed.status_code == 200 else []
        )
        self.open = list(dict.fromkeys([*self.open, *held]))
        for ticket in list(self.open):
            r = await self.http.post("/api/agents/agent_1/close", json={"ticket": ticket})
            self._sent("close", str(ticket), r)
            if r.status_code in (200, 404):
                self.open.remove(ticket)
        tick = await self.http.get("/api/agents/agent_1/tick/XAUUSD")
        if tick.status_code != 200:
            return
        bid = tick.json()["bid"]
        body = {"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": round(bid - 5, 2)}
        r = await self.http.post(
            "/api/agents/agent_1/trade", json={**body, "client_order_id": f"soak-{i}"}
        )
        self._sent("trade", f"soak-{i}", r)
        if r.status_code == 200:
            self.open.append(r.json()["ticket"])

    def _sent(self, kind: str, key: str, r: httpx.Response) -> None:
        error = r.json().get("error", {}) if r.status_code != 200 else {}
        code = error.get("code")
        self.sent.append((kind, key, r.status_code, code))
        if code is not None:
            self.first_refusal.setdefault(
                f"{kind} {r.status_code} {code}", str(error.get("message"))
            )


def _config(sims: list[SimServer]) -> str:
    # agent_1 loses the spread on every round trip (~0.30 USD): at 5 % a day it was halted
    # after ~16 700 trades (~90 minutes), and refused every trade after that.
    return f"""\
polling: {{tick_interval: 0.1, account_interval: 0.5, timeout: 1.0, trade_timeout: 3.0,
          backoff_initial: 0.2, backoff_max: 1.0}}
symbols:
  XAUUSD: {{contract_size: 100, digits: 2}}
  EURUSD: {{contract_size: 100000, digits: 5}}
agents:
  agent_1: {{name: Atlas, strategy: soak, bridge: "{sims[0].url}", symbols: [XAUUSD],
            initial_balance: 100000,
            risk: {{max_risk_per_trade: 1%, max_daily_loss: 50%, max_positions: 1}}}}
  agent_2: {{name: Orion, strategy: soak, bridge: "{sims[1].url}", symbols: [EURUSD],
            initial_balance: 100000,
            risk: {{max_risk_per_trade: 1%, max_daily_loss: 5%, max_positions: 2}}}}
"""


def _proc_status(pid: int) -> tuple[float, int, int]:
    """(RSS in MB, threads, open file descriptors) of ``pid`` from /proc."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    rss_mb = int(fields["VmRSS"].split()[0]) / 1024
    return round(rss_mb, 1), int(fields["Threads"]), len(os.listdir(f"/proc/{pid}/fd"))


def _metric_sum(text: str, name: str) -> int:
    return int(
        sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))
    )


async def _get(http: httpx.AsyncClient, path: str) -> httpx.Response:
    """GET, once more on a fresh connection if the hub closed the kept-alive one just as
    the request went out (its keep-alive timeout, 5 s, is the sampling period)."""
    try:
        return await http.get(path)
    except httpx.TransportError:
        return await http.get(path)


async def _sample(t: float, pid: int, http: httpx.AsyncClient, subs: list[_Subscriber]) -> Sample:
    rss, threads, fds = _proc_status(pid)
    status = (await _get(http, "/api/status")).json()
    metrics = (await _get(http, "/metrics")).text
    tasks = status.get("tasks")
    if tasks is None and "mt4hub_asyncio_tasks" in metrics:
        tasks = _metric_sum(metrics, "mt4hub_asyncio_tasks")
    return Sample(
        t=round(t, 1),
        rss_mb=rss,
        threads=threads,
        fds=fds,
        tasks=tasks,
        connections=status["connections"],
        records_queue=status["store"]["queue_depth"],
        spooled=status["store"]["spool_records"],
        order_events_published=_metric_sum(metrics, "mt4hub_order_events_total"),
        order_events_received_min=min((len(s.orders) for s in subs), default=0),
    )


def _line(s: Sample) -> str:
    tasks = "n/a" if s.tasks is None else str(s.tasks)
    return (
        f"t={s.t:7.1f}s rss={s.rss_mb:6.1f}MB threads={s.threads} fds={s.fds} tasks={tasks} "
        f"conns={s.connections} rec_queue={s.records_queue} spool={s.spooled} "
        f"orders pub={s.order_events_published} recv_min={s.order_events_received_min}"
    )


async def _start_hub(
    config: Path,
    data: Path,
    port: int,
    log: Path,
    trace: Path | None,
    trace_every: float,
    bounds: int | None = None,
) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(HUB_ADMIN_TOKEN=TOKEN, HUB_DATA_DIR=str(data), PYTHONPATH=str(ROOT))
    main = ["-m", "hub.cli"]
    if trace is not None:
        main = ["-m", "bench._traced_hub", str(trace), str(trace_every), "--"]
        if bounds is not None:
            env[BOUNDS_ENV] = str(bounds)
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, *main, "run", "--config", str(config), "--port", str(port),
            env=env, stdout=out, stderr=asyncio.subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip


async def _wait_up(http: httpx.AsyncClient, proc: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(60):
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"the hub exited with {proc.returncode} before answering")
            try:
                agents = (await http.get("/api/agents")).json()
                if all(a["status"]["status"] == "online" for a in agents):
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


async def _faults(
    sim: SimServer, every: float, hold: float, stop_at: float, log: list[str]
) -> None:
    loop = asyncio.get_running_loop()
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as http:
        for mode in itertools.cycle(_FAULTS):
            await asyncio.sleep(every - hold)
            if loop.time() + hold >= stop_at:
                return
            await http.post("/sim/fault", json={"mode": mode})
            log.append(mode)
            await asyncio.sleep(hold)
            await http.post("/sim/fault", json={"mode": "ok"})


def _check_commands(
    sent: list[tuple[str, str, int, str | None]], events: list[dict[str, Any]]
) -> tuple[list[str], Counter[str]]:
    """(answered commands whose order event is missing, refused commands without any event).

    A trade's events carry its client_order_id; every close that reached the hub's
    command path (not a 404 for a ticket already gone) publishes ``closed`` or ``failed``.
    """
    trades = {e.get("client_order_id") for e in events if e.get("command") == "trade"}
    close_events = Counter(str(e.get("ticket")) for e in events if e.get("command") == "close")
    missing: list[str] = []
    silent: Counter[str] = Counter()
    closes: Counter[str] = Counter()
    for kind, key, status, code in sent:
        if kind == "close":
            if status == 404:
                continue
            closes[key] += 1
            seen = close_events[key] >= closes[key]
        else:
            seen = key in trades
        if not seen:
            if status == 200:
                missing.append(f"{kind} {key}")
            else:
                silent[f"{kind} {status} {code}"] += 1
    return missing, silent


async def run_soak(
    duration: float,
    subscribers: int,
    *,
    fault_every: float = 60.0,
    fault_for: float = 4.0,
    sample_every: float = 5.0,
    warmup: float | None = None,
    trade_period: float = 0.25,
    workdir: Path | None = None,
    trace: Path | None = None,
    trace_every: float = 60.0,
    bounds: int | None = None,
    out: Any = print,
) -> SoakReport:
    """Run the soak for ``duration`` seconds; ``out`` gets one line per sample."""
    warm = min(30.0, duration / 4) if warmup is None else warmup
    specs = {
        "XAUUSD": SymbolSpec(contract_size=100, digits=2),
        "EURUSD": SymbolSpec(contract_size=100000, digits=5),
    }
    with tempfile.TemporaryDirectory(prefix="mt4hub-soak-") as tmp_name:
        tmp = workdir or Path(tmp_name)
        sims = [
            await start_sim("127.0.0.1", 0, symbols={s: specs[s]}, balance=100000.0, seed=i)
            for i, s in enumerate(specs)
        ]
        config = tmp / "agents.yml"
        config.write_text(_config(sims))
        (tmp / "data").mkdir(exist_ok=True)
        port = closed_port()
        data = tmp / "data"
        proc = await _start_hub(config, data, port, tmp / "hub.log", trace, trace_every, bounds)
        http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=_AUTH, timeout=10)
        url = f"ws://127.0.0.1:{port}/ws?token={TOKEN}&batch=1"
        subs = [_Subscriber(url, keep_events=i == 0) for i in range(subscribers)]
        tasks: list[asyncio.Task[None]] = []
        try:
            await _wait_up(http, proc)
            tasks = [asyncio.create_task(s.run()) for s in subs]
            async with asyncio.timeout(60):
                await asyncio.gather(*(s.ready.wait() for s in subs))
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            stop_at = t0 + duration
            trader = _Trader(http, trade_period)
            faults: list[str] = []
            work = [
                asyncio.create_task(trader.run(stop_at)),
                asyncio.create_task(_faults(sims[0], fault_every, fault_for, stop_at, faults)),
            ]
            samples = [await _sample(0.0, proc.pid, http, subs)]
            out(_line(samples[-1]))
            while (now := loop.time()) < stop_at:
                await asyncio.sleep(min(sample_every, stop_at - now))
                samples.append(await _sample(loop.time() - t0, proc.pid, http, subs))
                out(_line(samples[-1]))
            await asyncio.gather(*work)
            await asyncio.sleep(2.0)  # the last events reach every subscriber
            final = await _sample(loop.time() - t0, proc.pid, http, subs)
            samples.append(final)
            out(_line(final))
        finally:
            for s in subs:
                s.done = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await http.aclose()
            if proc.returncode is None:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 30)
            for sim in sims:
                await sim.close()
        hub_log = (tmp / "hub.log").read_text(errors="replace")
    published = final.order_events_published
    missing, silent = _check_commands(trader.sent, subs[0].events)
    errors = [f"subscriber {i}: {e}" for i, s in enumerate(subs) for e in s.errors]
    errors += trader.errors
    errors += [f"hub log: {line}" for line in hub_log.splitlines() if "Traceback" in line]
    if proc.returncode not in (0, -15):
        errors.append(f"hub exited with {proc.returncode}")
    post = [s for s in samples if s.t >= warm] or samples[-1:]
    sites: list[tuple[str, int, int]] = []
    types: list[tuple[str, int]] = []
    span = None
    lines = read_trace(trace) if trace is not None else []
    if len(lines) >= 2:
        # The second half: from the first snapshot at or after the middle to the last one.
        middle = lines[-1]["t"] - duration / 2
        first = next((x for x in lines if x["t"] >= middle and x is not lines[-1]), lines[0])
        sites, types = growth(first, lines[-1])
        span = (first["t"], lines[-1]["t"])
    return SoakReport(
        duration=duration,
        subscribers=subscribers,
        warmup=warm,
        samples=samples,
        rss_warm_mb=post[0].rss_mb,
        rss_end_mb=final.rss_mb,
        rss_growth_mb=round(max(s.rss_mb for s in post) - post[0].rss_mb, 1),
        rss_slope_mb_per_hour=rss_slope([s for s in samples if s.t >= duration / 2]),
        growing_sites=sites,
        growing_types=types,
        trace_span=span,
        commands=dict(Counter(f"{k} {st}" + (f" {c}" if c else "") for k, _, st, c in trader.sent)),
        first_refusal=trader.first_refusal,
        order_events_published=published,
        order_events_lost=sum(published - len(s.orders) for s in subs) + len(missing),
        answered_without_event=missing,
        silent_commands=dict(silent),
        seq_gaps=sum(s.gaps for s in subs),
        faults=faults,
        offline_seen=_transitions(subs[0].status, "online", "offline"),
        online_again=_transitions(subs[0].status, "offline", "online"),
        errors=errors,
    )


def rss_slope(samples: list[Sample]) -> float:
    """Least-squares slope of RSS against time, in MB per hour (0 with fewer than 2 samples)."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mt = sum(s.t for s in samples) / n
    mr = sum(s.rss_mb for s in samples) / n
    var = sum((s.t - mt) ** 2 for s in samples)
    if var == 0:
        return 0.0
    cov = sum((s.t - mt) * (s.rss_mb - mr) for s in samples)
    return round(cov / var * 3600, 2)


def _transitions(values: list[str], before: str, after: str) -> int:
    return sum(1 for pair in itertools.pairwise(values) if pair == (before, after))


def summary(r: SoakReport) -> str:
    """The end-of-run report as text."""
    return "\n".join(
        [
            f"soak: {r.duration:g} s, {r.subscribers} subscribers, warm-up {r.warmup:g} s",
            f"rss: {r.samples[0].rss_mb} MB at start, {r.rss_warm_mb} MB after warm-up, "
            f"{r.rss_end_mb} MB at the end, max {max(s.rss_mb for s in r.samples)} MB; "
            f"growth after warm-up {r.rss_growth_mb} MB; "
            f"slope over the second half {r.rss_slope_mb_per_hour:+.2f} MB/hour",
            *_growth_lines(r),
            f"commands: {json.dumps(r.commands, sort_keys=True)}",
            *(f"  first {k}: {m}" for k, m in sorted(r.first_refusal.items())),
            f"order events: {r.order_events_published} published, lost {r.order_events_lost} "
            f"(over {r.subscribers} subscribers), seq gaps {r.seq_gaps}",
            f"answered commands without their order event: {r.answered_without_event or 'none'}",
            f"refused commands that published no order event: {r.silent_commands or 'none'}",
            f"faults on agent_1: {r.faults}; offline seen {r.offline_seen}, "
            f"online again {r.online_again}",
            f"errors: {r.errors or 'none'}",
        ]
    )


def _growth_lines(r: SoakReport) -> list[str]:
    if r.trace_span is None:
        return []
    hours = max(r.trace_span[1] - r.trace_span[0], 1.0) / 3600
    head = f"growing over the second half (hub t={r.trace_span[0]:g}-{r.trace_span[1]:g} s):"
    sites = [
        f"  {size / 1024:+9.1f} KB ({size / 1024 / hours:+8.1f} KB/hour) {n:+7d} blocks  {site}"
        for site, size, n in r.growing_sites
    ]
    types = [f"  {n:+8d} objects ({n / hours:+9.0f}/hour)  {name}" for name, n in r.growing_types]
    return [head, *(sites or ["  no allocation site grew"]), *(types or ["  no type grew"])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds (default 120)")
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--fault-every", type=float, default=60.0)
    parser.add_argument("--fault-for", type=float, default=4.0)
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--json", type=Path, help="also write the report here as JSON")
    parser.add_argument(
        "--trace",
        type=Path,
        help="run the hub under tracemalloc and write its snapshots here (JSON lines); "
        "the report then names the allocation sites and types that grew",
    )
    parser.add_argument("--trace-every", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument(
        "--bounds",
        type=int,
        help="with --trace: every count bound of the hub shrunk to this (they fill in "
        "minutes, so the report shows what grows once all are full)",
    )
    args = parser.parse_args(argv)
    report = asyncio.run(
        run_soak(
            args.duration,
            args.subscribers,
            fault_every=args.fault_every,
            fault_for=args.fault_for,
            sample_every=args.sample_every,
            trace=args.trace,
            trace_every=args.trace_every,
            bounds=args.bounds,
        )
    )
    print(summary(report), flush=True)
    if args.json:
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(report)))
    return 1 if report.order_events_lost or report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
