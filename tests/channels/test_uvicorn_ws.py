"""The direct-write path (uvicorn ``ws=PreframedWebSocketProtocol``): same protocol, shared flushes.

Every /ws session test of ``test_session`` runs again here over the direct path (the
``make_hub`` fixture below replaces the conftest's), then the direct path's own cases:
exact frame bytes, backpressure without loss, one shared build of a batch frame.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import websockets
from websockets.frames import Frame, Opcode

from channels.asgi import PreframedWebSocketProtocol
from channels.lane import text_frame
from channels.memory import MemoryBroker
from channels.node import Node
from channels.session import SessionLimits
from channels.uvicorn_ws import _Flag, _Inbox
from tests.channels.conftest import Hub, HubFactory, build_app, connect, dumps, recv_type
from tests.channels.test_session import (  # noqa: F401  (collected again, over this fixture)
    test_a_first_message_other_than_auth_closes_4001,
    test_a_refused_op_is_answered_with_an_error_and_its_id,
    test_a_stalled_websocket_is_closed_4008_while_others_get_everything,
    test_admin_may_stop_and_failures_come_back_as_results,
    test_agent_scoped_token_stays_within_its_agents,
    test_an_idle_connection_gets_heartbeats,
    test_auth_by_first_message,
    test_auth_by_header,
    test_auth_by_query,
    test_bad_input_gets_bad_request_and_the_connection_stays,
    test_bad_token_closes_4001,
    test_batch_connections_may_get_several_messages_per_frame,
    test_declared_ops_reach_the_server_with_their_fields,
    test_flooding_is_rate_limited_then_closed_4029,
    test_no_auth_message_in_time_closes_4001,
    test_ping_echoes_its_id_with_server_time,
    test_since_recovers_across_a_reconnect,
    test_subscribe_sends_snapshot_then_events,
    test_wildcard_and_unsubscribe,
)
from tests.timing import eventually, units


@pytest.fixture
async def make_hub() -> AsyncIterator[HubFactory]:
    """Hubs on the in-process broker, served by uvicorn with the direct-write protocol."""
    import uvicorn

    servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def factory(limits: SessionLimits | None = None, history_size: int = 100) -> Hub:
        broker = MemoryBroker(history_size=history_size)
        node = Node(broker)
        app = build_app(node, limits or SessionLimits(heartbeat=units(50), auth_timeout=units(3)))
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            ws=PreframedWebSocketProtocol,
            ws_per_message_deflate=False,
            lifespan="off",
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        servers.append((server, task))
        await eventually(
            lambda: server.started or task.done(), timeout=units(100), message="uvicorn to start"
        )
        if not server.started:
            task.result()
            raise RuntimeError("uvicorn did not start")
        port = server.servers[0].sockets[0].getsockname()[1]
        return Hub(f"ws://127.0.0.1:{port}/ws", node, broker, server)

    yield factory
    for server, task in reversed(servers):
        server.should_exit = True
        server.force_exit = True
        await task


@pytest.fixture
async def hub(make_hub: HubFactory) -> Hub:
    return await make_hub()


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536, 70000])
def test_text_frame_bytes_are_what_websockets_would_send(size: int) -> None:
    payload = b"x" * size
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


async def test_messages_go_through_the_lane_not_send_text(hub: Hub) -> None:
    async with await connect(hub, "read-t") as ws:
        await ws.send(dumps({"op": "subscribe", "channels": ["signals"]}))
        await recv_type(ws, "subscribed")
        before = hub.node.lane.writes
        await hub.broker.publish("signals", {"n": 1})
        event = await recv_type(ws, "event")
        assert event["data"] == {"n": 1}
        assert hub.node.lane.writes > before


async def test_a_paused_reader_gets_every_event_in_order_once_it_reads(
    make_hub: HubFactory,
) -> None:
    hub = await make_hub(SessionLimits(soft_limit=64, hard_limit=2048, heartbeat=units(50)))
    ws = await websockets.connect(
        f"{hub.url}?token=read-t", max_queue=1, compression=None, max_size=None
    )
    try:
        await recv_type(ws, "welcome")
        await ws.send(dumps({"op": "subscribe", "channels": ["signals"]}))
        await recv_type(ws, "subscribed")
        blob = "y" * 30000
        for _ in range(400):  # 12 MB: more than the socket buffers; fewer items than the hard limit
            await hub.broker.publish("signals", {"blob": blob})
            await asyncio.sleep(0)
        assert hub.node.lane.spills > 0, "the sink filled up and messages queued"
        seqs: list[int] = []
        while len(seqs) < 400:
            message = json.loads(await asyncio.wait_for(ws.recv(), units(50)))
            if message["type"] == "event":
                seqs.append(message["seq"])
        assert seqs == list(range(1, 401))
    finally:
        await ws.close()


async def test_batched_subscribers_share_one_built_frame(make_hub: HubFactory) -> None:
    hub = await make_hub(SessionLimits(flush_interval=units(2), heartbeat=units(50)))
    clients = [await connect(hub, "read-t", "&batch=1") for _ in range(5)]
    try:
        for ws in clients:
            await ws.send(dumps({"op": "subscribe", "channels": ["signals"]}))
            await recv_type(ws, "subscribed")
        await asyncio.sleep(units(3))  # idle for longer than flush_interval
        await hub.broker.publish("signals", {"i": 0})  # a lone message: at once, to each
        for ws in clients:
            assert json.loads(await asyncio.wait_for(ws.recv(), units(1)))["seq"] == 1
        built = hub.node.lane.built
        for i in range(1, 50):
            await hub.broker.publish("signals", {"i": i})
        for ws in clients:
            seqs: list[int] = []
            while len(seqs) < 49:
                raw = await asyncio.wait_for(ws.recv(), units(20))
                seqs += [json.loads(line)["seq"] for line in str(raw).split("\n")]
            assert seqs == list(range(2, 51))
        assert hub.node.lane.built - built < 5, "one build per flush for all five"
    finally:
        for ws in clients:
            await ws.close()


async def test_batching_holds_messages_only_under_load(make_hub: HubFactory) -> None:
    """At once unless the last frame carried several messages or the last two left within
    the flush interval (0.5 s here, so a held message is plain to see)."""
    hub = await make_hub(SessionLimits(flush_interval=units(5), heartbeat=units(100)))
    ws = await connect(hub, "read-t", "&batch=1")
    seq = 0

    async def publish(n: int = 1) -> list[int]:
        nonlocal seq
        for _ in range(n):  # no await yields to the loop: one iteration for all n
            await hub.broker.publish("signals", {"i": seq})
            seq += 1
        return list(range(seq - n + 1, seq + 1))

    async def frame(within: float) -> list[int]:
        raw = await asyncio.wait_for(ws.recv(), within)
        return [json.loads(line)["seq"] for line in str(raw).split("\n")]

    try:
        await ws.send(dumps({"op": "subscribe", "channels": ["signals"]}))
        await recv_type(ws, "subscribed")  # a frame too: let its interval pass
        await asyncio.sleep(units(6))
        for _ in range(2):  # idle: each message at once
            seqs = await publish()
            assert await frame(units(2)) == seqs
        held = await publish()  # two frames within the interval: under load
        with pytest.raises(TimeoutError):
            await frame(units(2))
        assert await frame(units(10)) == held
        await asyncio.sleep(units(6))  # idle again
        seqs = await publish(10)  # a burst: one frame, at once
        assert await frame(units(2)) == seqs
        held = await publish()  # the last frame carried ten: under load
        with pytest.raises(TimeoutError):
            await frame(units(2))
        assert await frame(units(10)) == held
    finally:
        await ws.close()


async def test_the_slim_receive_queue_keeps_order_and_survives_a_cancelled_get() -> None:
    inbox = _Inbox()
    getter = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    getter.cancel()  # as when the reader is cancelled while waiting
    await asyncio.gather(getter, return_exceptions=True)
    assert inbox.empty()
    for n in range(3):
        inbox.put_nowait(n)
    assert not inbox.empty()
    assert [await inbox.get() for _ in range(3)] == [0, 1, 2]
    waiting = asyncio.create_task(inbox.get())
    await asyncio.sleep(0)
    inbox.put_nowait("late")
    assert await asyncio.wait_for(waiting, 1) == "late"


async def test_the_slim_writable_flag_wakes_every_waiter_on_set() -> None:
    flag = _Flag()
    assert not flag.is_set()
    waiters = [asyncio.create_task(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    assert await asyncio.wait_for(asyncio.gather(*waiters), 1) == [True, True, True]
    flag.clear()
    cancelled = asyncio.create_task(flag.wait())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.gather(cancelled, return_exceptions=True)
    assert flag._waiters == []  # a cancelled wait leaves nothing behind
    flag.set()
    assert await flag.wait() is True


async def test_in_sync_websockets_share_one_group_and_its_writes(hub: Hub) -> None:
    clients = [await connect(hub, "read-t") for _ in range(4)]
    try:
        for ws in clients:
            await ws.send(dumps({"op": "subscribe", "channels": ["signals"]}))
            await recv_type(ws, "subscribed")
        await eventually(lambda: len(hub.node.groups.of) == 4, message="all four grouped")
        assert len(hub.node.groups) == 1
        writes = hub.node.groups.writes
        for i in range(3):
            await hub.broker.publish("signals", {"i": i})
        for ws in clients:
            assert [(await recv_type(ws, "event"))["seq"] for _ in range(3)] == [1, 2, 3]
        assert hub.node.groups.writes - writes >= 4, "written by the group, to each member"
    finally:
        for ws in clients:
            await ws.close()
