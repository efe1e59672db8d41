"""The Python client over real uvicorn: requests, and resuming across a server restart."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from channels.client import HubClient, HubRefused, HubUnreachable
from channels.memory import MemoryBroker
from channels.node import Node
from channels.session import SessionLimits
from tests.channels.conftest import Hub, build_app, serve_app
from tests.timing import units


async def test_request_waits_for_the_reply_with_its_id(hub: Hub) -> None:
    async with HubClient(hub.url, "trade-t", backoff_min=units(0.5)) as client:
        reply = await client.request({"op": "close_all", "agent": "agent_1"})
        assert reply["type"] == "result"
        assert reply["data"] == {"op": "close_all", "by": "ml", "fields": {"agent": "agent_1"}}


async def test_no_gap_and_no_duplicate_across_a_server_restart() -> None:
    broker = MemoryBroker()
    node = Node(broker)
    app = build_app(node, SessionLimits(heartbeat=units(50)))
    got: list[dict[str, Any]] = []
    async with serve_app(app) as (_, port):
        client = HubClient(f"ws://127.0.0.1:{port}/ws", "read-t", backoff_min=units(0.5))
        await client.__aenter__()
        await client.subscribe(["signals", "summary"])
        await broker.publish("summary", {"v": 0})
        for i in range(1, 6):
            await broker.publish("signals", {"i": i})
        messages = aiter(client)
        while len(got) < 6:
            got.append(await asyncio.wait_for(anext(messages), units(30)))
    for i in range(6, 11):  # published while the hub's socket is down
        await broker.publish("signals", {"i": i})
    async with serve_app(app, port):
        while len([m for m in got if m["ch"] == "signals"]) < 10:
            got.append(await asyncio.wait_for(anext(messages), units(50)))
        await client.close()
    signals = [m["seq"] for m in got if m["ch"] == "signals"]
    assert signals == list(range(1, 11))
    assert client.reconnects >= 1


async def test_a_refused_token_is_raised_not_retried(hub: Hub) -> None:
    with pytest.raises(HubRefused) as info:
        async with HubClient(hub.url, "no-such-token", backoff_min=units(0.5)):
            pass
    assert info.value.code == "unauthorized"


async def test_no_server_within_the_connect_timeout_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{s.getsockname()[1]}/ws"  # nothing listens there
    with pytest.raises(HubUnreachable, match="Connect call failed"):
        async with HubClient(url, "t", backoff_min=units(0.5), connect_timeout=units(10)):
            pass
