"""Helpers for the fault tests: a hub as a real process, and a WebSocket recorder."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.hubkit import free_port, kill_process, stop_process
from tests.timing import eventually, units

__all__ = ["TOKEN", "HubProc", "Recorder"]

TOKEN = "faults-admin-token"
ROOT = Path(__file__).resolve().parents[2]


class HubProc:
    """``mt4hub run`` as a child process on a free port (kill -9 and restart it at will)."""

    def __init__(self, config: Path, data: Path, env: dict[str, str], log: Path) -> None:
        self.config = config
        self.data = data
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")},
            "HUB_ADMIN_TOKEN": TOKEN,
            "HUB_DATA_DIR": str(data),
            "PYTHONPATH": str(ROOT),
            **env,
        }
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=units(100)
        )
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self._spawn()
        await eventually(
            self._answers,
            timeout=units(300),
            interval=units(0.5),
            message="the hub to answer /health",
        )

    def _spawn(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hub.cli", "run", "--config", str(self.config),
                 "--port", str(self.port)],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip

    async def _answers(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, f"the hub exited: {self.log.read_text()[-2000:]}"
        try:
            return (await self.http.get("/health")).status_code == 200
        except httpx.TransportError:
            return False

    async def online(self, *agents: str) -> None:
        async def check() -> bool:
            rows = (await self.http.get("/api/agents")).json()
            return all(r["status"]["status"] == "online" for r in rows if r["agent_id"] in agents)

        await eventually(check, timeout=units(100), interval=units(0.5), message=f"{agents} online")

    async def status(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self.http.get("/api/status")).json()
        return body

    async def kill9(self) -> None:
        assert self.proc is not None
        await kill_process(self.proc)

    async def close(self) -> None:
        try:
            if self.proc is not None:
                await stop_process(self.proc, "the hub", 30)
        finally:
            await self.http.aclose()


class Recorder:
    """A subscriber that keeps every message (batched frames split) with its arrival time."""

    def __init__(self, url: str, channels: list[str]) -> None:
        self.url = url
        self.channels = channels
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def __aenter__(self) -> Recorder:
        self._task = asyncio.create_task(self._run())
        async with asyncio.timeout(units(100)):
            await self._subscribed.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        if self._task.done():
            self._task.result()  # a recorder that died fails the test with its error
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        async with websockets.connect(self.url, max_size=None) as ws:
            sub = {"op": "subscribe", "id": "rec", "channels": self.channels}
            await ws.send(json.dumps(sub))
            async for frame in ws:
                for line in str(frame).split("\n"):
                    msg = json.loads(line)
                    self.messages.append((loop.time(), msg))
                    if msg.get("id") == "rec":
                        self._subscribed.set()

    def on(self, channel: str, since: float = 0.0) -> list[dict[str, Any]]:
        """Snapshots and events of ``channel`` received at or after loop time ``since``."""
        return [
            m
            for t, m in self.messages
            if t >= since and m.get("ch") == channel and m["type"] in ("snapshot", "event")
        ]
