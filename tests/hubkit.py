"""Test kit: a real hub (uvicorn on a free port) with real in-process simulated EA Bridges."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import tempfile
import textwrap
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn

from hub.app import Hub, create_app
from hub.config import HubConfig, parse_config
from hub.server import uvicorn_options
from tests.timing import eventually, units

__all__ = [
    "RunningHub",
    "free_port",
    "free_ports",
    "hub_config",
    "kill_process",
    "one_agent_yaml",
    "run_hub",
    "stop_process",
]

TOKEN = "test-admin-token"


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct free ports: all held bound while picked (one after another, the kernel
    may hand out a port just released again)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


async def stop_process(proc: subprocess.Popen[bytes], name: str, within: float) -> None:
    """SIGTERM a hub process and wait for its exit without blocking this loop (its
    simulators run here and must keep answering); fails if SIGTERM was ignored."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        await asyncio.to_thread(proc.wait, within)
    except subprocess.TimeoutExpired:
        await kill_process(proc)
        raise AssertionError(f"{name} ignored SIGTERM for {within:g} s") from None


async def kill_process(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(proc.wait, 10)


def hub_config(
    extra: str = "",
    *,
    enabled: tuple[bool, bool, bool] = (True, True, True),
    profile: str = "mt4hub",
) -> HubConfig:
    """The shipped agents on free ports, with fast polling for tests; every agent's bridge
    (and its in-process simulator) speaks the bridge ``profile``."""
    p1, p2, p3 = free_ports(3)
    e1, e2, e3 = (str(e).lower() for e in enabled)
    text = textwrap.dedent(
        f"""
        polling: {{tick_interval: 0.05, account_interval: 0.1, timeout: 0.5, backoff_initial: 0.05,
                  backoff_max: 0.2}}
        symbols:
          XAUUSD: {{contract_size: 100, digits: 2}}
          EURUSD: {{contract_size: 100000, digits: 5}}
          GBPUSD: {{contract_size: 100000, digits: 5}}
          USDJPY: {{contract_size: 100000, digits: 3, quote_currency: JPY}}
        agents:
          agent_1:
            {{name: Atlas, strategy: amd, bridge: "sim://127.0.0.1:{p1}", enabled: {e1},
             symbols: [XAUUSD], initial_balance: 200, bridge_profile: {profile},
             risk: {{max_risk_per_trade: 1%, max_daily_loss: 5%, max_positions: 1}}}}
          agent_2:
            {{name: Orion, strategy: ict, bridge: "sim://127.0.0.1:{p2}", enabled: {e2},
             symbols: [EURUSD, GBPUSD], initial_balance: 500, bridge_profile: {profile},
             risk: {{max_risk_per_trade: 1.5%, max_daily_loss: 5%, max_positions: 2}}}}
          agent_3:
            {{name: Nova, strategy: mixed, bridge: "sim://127.0.0.1:{p3}", enabled: {e3},
             symbols: [XAUUSD, EURUSD, GBPUSD, USDJPY], initial_balance: 1000,
             bridge_profile: {profile},
             risk: {{max_risk_per_trade: 2%, max_daily_loss: 5%, max_positions: 3}}}}
        """
    )
    return parse_config(text + textwrap.dedent(extra), "test-config")


def one_agent_yaml(extra: str = "") -> str:
    """A config file's text: agent_1 on an in-process simulator on a free port."""
    return textwrap.dedent(
        f"""
            symbols: {{XAUUSD: {{contract_size: 100, digits: 2}}}}
            agents:
              agent_1:
                {{name: Atlas, strategy: amd, bridge: "sim://127.0.0.1:{free_port()}",
                 symbols: [XAUUSD], initial_balance: 200,
                 risk: {{max_risk_per_trade: 1%, max_daily_loss: 5%, max_positions: 1}}}}
            """
    ) + textwrap.dedent(extra)


class RunningHub:
    def __init__(self, hub: Hub, port: int) -> None:
        self.hub = hub
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}/ws"
        self.token = TOKEN
        self.headers = {"Authorization": f"Bearer {TOKEN}"}
        self.http = httpx.AsyncClient(base_url=self.url, timeout=units(50))

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.http.get(path, headers=kw.pop("headers", self.headers), **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return await self.http.post(path, json=json, headers=kw.pop("headers", self.headers), **kw)

    def sim_url(self, agent_id: str) -> str:
        return self.hub.config.agents[agent_id].bridge_http_url

    async def sim(self, agent_id: str, path: str, body: dict[str, Any]) -> None:
        resp = await self.http.post(self.sim_url(agent_id) + path, json=body)
        assert resp.status_code == 200, resp.text


@asynccontextmanager
async def run_hub(
    config: HubConfig | None = None,
    env: Mapping[str, str] | None = None,
    data_dir: str | None = None,
) -> AsyncIterator[RunningHub]:
    """A hub on a free port; ``data_dir`` (default: a fresh temp dir) holds its state files."""
    config = config or hub_config()
    with tempfile.TemporaryDirectory(prefix="mt4hub-test-") as tmp:
        environ = {"HUB_ADMIN_TOKEN": TOKEN, "HUB_DATA_DIR": data_dir or tmp, **(env or {})}
        async with _serve(config, environ) as running:
            yield running


@asynccontextmanager
async def _serve(config: HubConfig, environ: dict[str, str]) -> AsyncIterator[RunningHub]:
    app = create_app(config, env=environ)
    # Bound here and handed to uvicorn: no window in which another process takes the port.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options = uvicorn_options(config.server)  # as `mt4hub run`
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", **options)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    await eventually(
        lambda: server.started or task.done(), timeout=units(100), message="the hub to start"
    )
    if not server.started:
        task.result()
        raise RuntimeError("hub did not start")
    running = RunningHub(app.state.hub, port)
    try:
        yield running
    finally:
        await running.http.aclose()
        server.should_exit = True
        await task
