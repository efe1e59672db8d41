"""`make cluster`: Redis, Postgres, three simulated bridges, two hub instances and nginx with
TLS, on free ports (deploy/cluster.sh). Through nginx a browser-like client gets ticks and
every agent's positions snapshot; a trade through one instance appears once on the other's
orders channel; killing the instance that polls hands its agents to the other; and
`make cluster-stop` stops every process it started. The tests run in this order on one
cluster."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.deploy.kit import ROOT, require_nginx
from tests.timing import eventually, units

LEASE_TTL = 3.0  # hub/app.py: a dead poller's agents move within 2 x TTL


def _settings(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k: v.strip('"') for k, v in pairs if not k.startswith("#")}


@dataclass
class Cluster:
    folder: Path
    env: dict[str, str]
    token: str

    def port(self, name: str) -> int:
        return int(self.env[name])

    @property
    def sims(self) -> list[int]:
        return [int(p) for p in self.env["SIM_PORTS"].split()]

    @property
    def nginx(self) -> str:
        return f"localhost:{self.port('NGINX_PORT')}"

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.env["HUB_CA_FILE"])

    def pid(self, name: str) -> int:
        return int((self.folder / "pids" / f"{name}.pid").read_text())

    def hub(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port('HUB_A_PORT' if name == 'hub-a' else 'HUB_B_PORT')}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _make(target: str, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", target],
        cwd=ROOT,
        env={**os.environ, "CLUSTER_DIR": str(folder)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    require_nginx()
    if os.geteuid() != 0:
        pytest.skip("deploy/cluster.sh runs Postgres as the postgres user: run as root")
    folder = Path(tempfile.mkdtemp(prefix="mt4hub-cluster-"))
    try:
        started = _make("cluster", folder)
        assert started.returncode == 0, started.stdout + started.stderr
        env = _settings(folder / "cluster.env")
        yield Cluster(folder, env, _settings(folder / ".env")["HUB_ADMIN_TOKEN"])
    finally:
        if (folder / "cluster.env").exists():
            _make("cluster-stop", folder)
        shutil.rmtree(folder, ignore_errors=True)


async def _until(ws: websockets.ClientConnection, wanted: Any, within: float) -> list[Any]:
    """Messages until ``wanted(message)`` is true for one; fails after ``within`` s."""
    seen: list[Any] = []
    async with asyncio.timeout(within):
        while True:
            for line in str(await ws.recv()).split("\n"):
                seen.append(json.loads(line))
                if wanted(seen[-1]):
                    return seen


async def test_a_browser_gets_ticks_and_every_positions_snapshot_through_nginx(
    cluster: Cluster,
) -> None:
    """With a browser's Origin, on a port other than 443: the old `Host $host` got 403."""
    async with websockets.connect(
        f"wss://{cluster.nginx}/ws",
        ssl=cluster.tls(),
        origin=websockets.Origin(f"https://{cluster.nginx}"),
        additional_headers=cluster.auth,
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"
        await ws.send(
            json.dumps(
                {"op": "subscribe", "id": "1", "channels": ["agent:*:ticks", "agent:*:positions"]}
            )
        )
        seen = await _until(
            ws, lambda m: m.get("type") == "event" and m["ch"].endswith(":ticks"), units(100)
        )
    positions = {
        m["ch"]: m["data"] for m in seen if m.get("type") == "snapshot" and "positions" in m["ch"]
    }
    assert positions == {f"agent:agent_{i}:positions": {"positions": []} for i in (1, 2, 3)}


async def test_a_trade_through_one_instance_appears_once_on_the_other(cluster: Cluster) -> None:
    order_id = f"cluster-{uuid.uuid4().hex[:8]}"
    sim_1 = f"http://127.0.0.1:{cluster.sims[0]}"
    async with (
        httpx.AsyncClient(timeout=units(100)) as http,
        websockets.connect(
            f"ws://127.0.0.1:{cluster.port('HUB_B_PORT')}/ws", additional_headers=cluster.auth
        ) as on_b,
    ):
        await on_b.recv()
        await on_b.send(
            json.dumps({"op": "subscribe", "id": "1", "channels": ["agent:agent_1:orders"]})
        )
        await _until(on_b, lambda m: m.get("type") == "subscribed", units(50))
        pin = {"symbol": "XAUUSD", "bid": 2650.0, "ask": 2650.3}
        assert (await http.post(f"{sim_1}/sim/price", json=pin)).status_code == 200

        async def pinned() -> bool:
            tick = await http.get(
                f"{cluster.hub('hub-a')}/api/agents/agent_1/tick/XAUUSD", headers=cluster.auth
            )
            return tick.status_code == 200 and tick.json()["ask"] == 2650.3

        await eventually(pinned, timeout=units(100), message="hub-a to read the pinned price")
        trade = await http.post(
            f"{cluster.hub('hub-a')}/api/agents/agent_1/trade",
            json={"symbol": "XAUUSD", "action": "buy", "lots": 0.01, "sl": 2648.5},
            headers={**cluster.auth, "Idempotency-Key": order_id},
        )
        assert trade.status_code == 200, trade.text
        ticket = trade.json()["ticket"]
        await _until(on_b, lambda m: m.get("data", {}).get("event") == "filled", units(100))
        # Anything a second copy would bring arrives within a few poll intervals.
        with pytest.raises(TimeoutError):
            await _until(on_b, lambda m: m.get("data", {}).get("event") == "filled", units(30))
        closed = await http.post(
            f"{cluster.hub('hub-b')}/api/agents/agent_1/close",
            json={"ticket": ticket},
            headers=cluster.auth,
        )
        assert closed.status_code == 200, closed.text
        unpin = {"symbol": "XAUUSD", "walk": True}
        assert (await http.post(f"{sim_1}/sim/price", json=unpin)).status_code == 200


async def test_killing_the_polling_instance_hands_its_agents_to_the_other(
    cluster: Cluster,
) -> None:
    async with httpx.AsyncClient(timeout=units(50)) as http:

        async def polling(name: str) -> list[str]:
            status = await http.get(f"{cluster.hub(name)}/api/status")
            found: list[str] = status.json()["polling"]
            return found

        async def poller() -> str | None:
            a, b = await polling("hub-a"), await polling("hub-b")
            return "hub-a" if "agent_1" in a else "hub-b" if "agent_1" in b else None

        dead = await eventually(poller, timeout=units(100), message="one instance polling")
        alive = "hub-b" if dead == "hub-a" else "hub-a"
        os.kill(cluster.pid(dead), signal.SIGKILL)
        killed = time.monotonic()

        async def taken_over() -> bool:
            return "agent_1" in await polling(alive)

        await eventually(
            taken_over, timeout=2 * LEASE_TTL + units(50), message=f"{alive} to take agent_1"
        )
        assert time.monotonic() - killed <= 2 * LEASE_TTL + units(50)
    async with websockets.connect(
        f"wss://{cluster.nginx}/ws", ssl=cluster.tls(), additional_headers=cluster.auth
    ) as ws:  # nginx passes over the dead upstream
        await ws.recv()
        await ws.send(
            json.dumps({"op": "subscribe", "id": "1", "channels": ["agent:agent_1:ticks"]})
        )
        await _until(ws, lambda m: m.get("type") == "event", units(100))


def test_cluster_stop_stops_every_process(cluster: Cluster) -> None:
    pids = [int(p.read_text()) for p in (cluster.folder / "pids").glob("*.pid")]
    ports = [cluster.port(k) for k in ("HUB_A_PORT", "HUB_B_PORT", "NGINX_PORT")] + cluster.sims
    ports += [cluster.port("REDIS_PORT"), cluster.port("POSTGRES_PORT")]
    stopped = _make("cluster-stop", cluster.folder)
    assert stopped.returncode == 0, stopped.stderr
    assert not cluster.folder.exists()
    running = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
    assert running == []
    listening = [port for port in ports if _listens(port)]
    assert listening == []


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def _listens(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
