"""The /ws session over a real uvicorn socket, driven by the websockets client."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from channels.session import SessionLimits
from tests.channels.conftest import Hub, HubFactory, connect, dumps, recv, recv_type
from tests.timing import units


async def closed_with(ws: websockets.ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), units(30))
    return ws.close_code


async def test_auth_by_header(hub: Hub) -> None:
    async with websockets.connect(
        hub.url, additional_headers={"Authorization": "Bearer read-t"}
    ) as ws:
        welcome = await recv(ws)
        assert welcome["type"] == "welcome"
        assert welcome["heartbeat"] == units(50)
        assert welcome["session"]


async def test_auth_by_query(hub: Hub) -> None:
    async with websockets.connect(f"{hub.url}?token=read-t") as ws:
        assert (await recv(ws))["type"] == "welcome"


async def test_auth_by_first_message(hub: Hub) -> None:
    async with websockets.connect(hub.url) as ws:
        await ws.send(dumps({"op": "auth", "token": "trade-t"}))
        assert (await recv(ws))["type"] == "welcome"


async def test_bad_token_closes_4001(hub: Hub) -> None:
    async with websockets.connect(f"{hub.url}?token=nope") as ws:
        error = await recv(ws)
        assert error["error"]["code"] == "unauthorized"
        assert await closed_with(ws) == 4001


async def test_no_auth_message_in_time_closes_4001(hub: Hub) -> None:
    async with websockets.connect(hub.url) as ws:
        assert await closed_with(ws) == 4001


async def test_a_first_message_other_than_auth_closes_4001(hub: Hub) -> None:
    async with websockets.connect(hub.url) as ws:
        await ws.send(dumps({"op": "ping"}))
        assert await closed_with(ws) == 4001


async def test_ping_echoes_its_id_with_server_time(hub: Hub) -> None:
    async with await connect(hub, "read-t") as ws:
        await ws.send(dumps({"op": "ping", "id": "3"}))
        pong = await recv(ws)
        assert pong["type"] == "pong"
        assert pong["id"] == "3"
        assert pong["ts"] > 1_600_000_000_000


async def test_subscribe_sends_snapshot_then_events(hub: Hub) -> None:
    await hub.broker.publish("agent:agent_1:account", {"equity": 1})
    async with await connect(hub, "read-t") as ws:
        await ws.send(dumps({"op": "subscribe", "id": "1", "channels": ["agent:agent_1:account"]}))
        subscribed = await recv(ws)
        assert subscribed["type"] == "subscribed"
        assert subscribed["id"] == "1"
        assert subscribed["recovered"] == {"agent:agent_1:account": False}
        epoch = subscribed["epochs"]["agent:agent_1:account"]
        snapshot = await recv(ws)
        assert (snapshot["type"], snapshot["seq"], snapshot["epoch"]) == ("snapshot", 1, epoch)
        await hub.broker.publish("agent:agent_1:account", {"equity": 2})
        event = await recv(ws)
        assert (event["type"], event["seq"], event["data"]) == ("event", 2, {"equity": 2})


async def test_wildcard_and_unsubscribe(hub: Hub) -> None:
    async with await connect(hub, "read-t") as ws:
        await ws.send(dumps({"op": "subscribe", "channels": ["agent:*:orders"]}))
        await recv_type(ws, "subscribed")
        await hub.broker.publish("agent:agent_2:orders", {"event": "filled"})
        assert (await recv(ws))["ch"] == "agent:agent_2:orders"
        await ws.send(dumps({"op": "unsubscribe", "id": 2, "channels": ["agent:*:orders"]}))
        assert await recv(ws) == {
            "type": "unsubscribed",
            "id": 2,
            "channels": ["agent:*:orders"],
        }
        await hub.broker.publish("agent:agent_2:orders", {"event": "closed"})
        await ws.send(dumps({"op": "ping", "id": "after"}))
        assert (await recv(ws))["type"] == "pong"


async def test_since_recovers_across_a_reconnect(hub: Hub) -> None:
    for i in range(3):
        await hub.broker.publish("signals", {"i": i})
    async with await connect(hub, "read-t") as ws:
        await ws.send(dumps({"op": "subscribe", "channels": ["signals"], "since": {"signals": 1}}))
        subscribed = await recv(ws)
        assert subscribed["recovered"] == {"signals": True}
        assert [(await recv(ws))["seq"] for _ in range(2)] == [2, 3]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1]", "frame must be a JSON object"),
        ('{"op":"fly","id":"9"}', "unknown op 'fly'"),
        (
            '{"op":"subscribe","id":"9","channels":["agent:x:bars"]}',
            "channels[0]: unknown channel",
        ),
        ('{"op":"subscribe","id":"9","channels":["summary"],"since":{"signals":1}}', "since:"),
        ("x" * 5000, "frame: over the limit"),
    ],
)
async def test_bad_input_gets_bad_request_and_the_connection_stays(
    make_hub: HubFactory, frame: str, message: str
) -> None:
    hub = await make_hub(SessionLimits(max_frame_bytes=4096))
    async with await connect(hub) as ws:
        await ws.send(frame)
        error = await recv(ws)
        assert error["type"] == "error"
        assert error["error"]["code"] == "bad_request"
        assert error["error"]["message"].startswith(message)
        if '"id":"9"' in frame:
            assert error["id"] == "9"
        await ws.send(dumps({"op": "ping", "id": 1}))
        assert (await recv(ws))["type"] == "pong"


async def test_declared_ops_reach_the_server_with_their_fields(hub: Hub) -> None:
    async with await connect(hub, "trade-t") as ws:
        await ws.send(dumps({"op": "close_all", "id": "7", "agent": "agent_1"}))
        assert await recv(ws) == {
            "type": "result",
            "id": "7",
            "ok": True,
            "data": {"op": "close_all", "by": "ml", "fields": {"agent": "agent_1"}},
        }


async def test_a_refused_op_is_answered_with_an_error_and_its_id(hub: Hub) -> None:
    async with await connect(hub, "trade-t") as ws:
        await ws.send(dumps({"op": "emergency_stop", "id": "8"}))
        assert await recv(ws) == {
            "type": "error",
            "id": "8",
            "error": {"code": "forbidden", "message": "op 'emergency_stop' needs the 'admin' role"},
        }
        await ws.send(dumps({"op": "resume", "id": "9"}))  # not declared by this server
        error = await recv(ws)
        assert (error["id"], error["error"]) == (
            "9",
            {"code": "bad_request", "message": "unknown op 'resume'"},
        )


async def test_admin_may_stop_and_failures_come_back_as_results(hub: Hub) -> None:
    async with await connect(hub, "admin-t") as ws:
        await ws.send(dumps({"op": "emergency_stop", "id": 1, "reason": "drill"}))
        assert (await recv(ws))["ok"] is True
        trade = {"op": "trade", "id": 2, "agent": "agent_1", "symbol": "XAUUSD"}
        await ws.send(dumps({**trade, "action": "buy", "lots": 0.01, "comment": "fail"}))
        result = await recv(ws)
        assert result["ok"] is False
        assert result["error"] == {
            "code": "risk_rejected",
            "message": "too risky",
            "details": {"check": "max_risk_per_trade"},
        }


async def test_agent_scoped_token_stays_within_its_agents(hub: Hub) -> None:
    async with await connect(hub, "scoped-t") as ws:
        await ws.send(dumps({"op": "subscribe", "id": 1, "channels": ["agent:agent_2:ticks"]}))
        assert (await recv(ws))["error"]["code"] == "forbidden"
        await ws.send(dumps({"op": "subscribe", "id": 3, "channels": ["agent:*:orders"]}))
        await recv_type(ws, "subscribed")
        await hub.broker.publish("agent:agent_2:orders", {"event": "filled"})
        await hub.broker.publish("agent:agent_1:orders", {"event": "filled"})
        assert (await recv(ws))["ch"] == "agent:agent_1:orders"


async def test_flooding_is_rate_limited_then_closed_4029(make_hub: HubFactory) -> None:
    hub = await make_hub(SessionLimits(rate=5, burst=5, flood_limit=20))
    async with await connect(hub) as ws:
        for i in range(200):
            try:
                await ws.send(dumps({"op": "ping", "id": i}))
            except ConnectionClosed:
                break
        codes = []
        with pytest.raises(ConnectionClosed):
            while True:
                codes.append(json.loads(await asyncio.wait_for(ws.recv(), units(30)))["type"])
        assert "error" in codes
        assert ws.close_code == 4029


async def test_batch_connections_may_get_several_messages_per_frame(hub: Hub) -> None:
    async with await connect(hub, "read-t", "&batch=1") as ws:
        await ws.send(dumps({"op": "subscribe", "channels": ["signals"]}))
        await recv_type(ws, "subscribed")
        for i in range(200):
            await hub.broker.publish("signals", {"i": i})
        seqs: list[int] = []
        frames = 0
        while len(seqs) < 200:
            raw = await asyncio.wait_for(ws.recv(), units(20))
            frames += 1
            seqs += [json.loads(line)["seq"] for line in str(raw).split("\n")]
        assert seqs == list(range(1, 201))
        assert frames < 200


async def test_a_stalled_websocket_is_closed_4008_while_others_get_everything(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub(SessionLimits(soft_limit=8, hard_limit=32, close_timeout=units(5)))
    stalled = await websockets.connect(f"{hub.url}?token=read-t", max_queue=1, compression=None)
    await recv(stalled)
    await stalled.send(dumps({"op": "subscribe", "channels": ["signals"]}))
    async with await connect(hub, "read-t") as healthy:
        await healthy.send(dumps({"op": "subscribe", "channels": ["signals"]}))
        await recv_type(healthy, "subscribed")
        payload = {"blob": "x" * 32000}
        for seq in range(1, 401):
            await hub.broker.publish("signals", payload)
            assert (await recv(healthy))["seq"] == seq
    assert await closed_with(stalled) == 4008


async def test_an_idle_connection_gets_heartbeats(make_hub: HubFactory) -> None:
    hub = await make_hub(SessionLimits(heartbeat=units(1)))
    async with await connect(hub, "read-t") as ws:
        beat = await recv(ws)
        assert beat["type"] == "heartbeat"
        assert beat["ts"] > 1_600_000_000_000
