"""What ``mt4hub run`` writes (stdout and stderr of the real process): no secret in any
encoding, and one line per event whatever a client puts in a path or a field."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets

from tests.faults.kit import TOKEN, HubProc
from tests.hubkit import one_agent_yaml
from tests.timing import eventually

LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubProc]:
    (tmp_path / "agents.yml").write_text(one_agent_yaml())
    proc = HubProc(tmp_path / "agents.yml", tmp_path / "data", {}, tmp_path / "hub.log")
    await proc.start()
    try:
        yield proc
    finally:
        await proc.close()


async def logged(hub: HubProc, marker: str) -> str:
    """The hub's output once ``marker`` reached it."""
    await eventually(lambda: marker in hub.log.read_text(), message=f"{marker!r} in the log")
    return hub.log.read_text()


async def test_a_percent_encoded_token_key_neither_authenticates_nor_reaches_the_log(
    hub: HubProc,
) -> None:
    anonymous = httpx.AsyncClient(base_url=hub.url)
    try:
        for key in ("%74oken", "%2574oken", "TOKEN"):
            r = await anonymous.get(f"/api/agents?{key}={TOKEN}")
            assert r.status_code in (400, 401), (key, r.status_code, r.text)
        r = await anonymous.get(f"/api/agents/{TOKEN}")  # a secret in a path
        assert r.status_code == 401
        r = await anonymous.get(f"/api/agents?token={TOKEN}")  # the plain key still works
        assert r.status_code == 200
    finally:
        await anonymous.aclose()
    async with websockets.connect(f"ws://127.0.0.1:{hub.port}/ws?%74oken={TOKEN}") as ws:
        assert json.loads(await ws.recv())["error"]["code"] == "unauthorized"
    text = await logged(hub, "WebSocket /ws?")
    assert "http GET /api/agents?token=*** 200" in text
    assert TOKEN not in text
    assert TOKEN.replace("t", "%74") not in text


async def test_no_client_input_can_start_a_log_line_of_its_own(hub: HubProc) -> None:
    forged = "2030-01-01T00:00:00.000Z ERROR mt4hub.app forged"
    for sep in ("%0a", "%0d", "%0d%0a", "%e2%80%a8", "%c2%85"):
        await hub.http.get(f"/api/nothing{sep}{forged.replace(' ', '%20')}")
    signal = {"signal_id": f"s\n{forged}", "symbol": "XAUUSD", "direction": "long",
              "confidence": 0.1, "sl": 1.0}  # fmt: skip
    assert (await hub.http.post("/api/signals", json=signal)).status_code == 200
    text = await logged(hub, "signal id=")
    lines = text.splitlines()  # \n, \r, \x85, \u2028 all end a line here
    assert [line for line in lines if line.startswith(forged)] == []
    assert [line for line in lines if not LINE.match(line) and "forged" in line] == []
    assert "s\\n2030-01-01" in text  # escaped, not dropped
