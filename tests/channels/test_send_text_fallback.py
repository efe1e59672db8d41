"""The fallback path: no raw sink, so the session's writer task drains into ``send_text``.

The conftest's hubs run under uvicorn's plain ``ws="websockets-sansio"``, which offers no
``mt4hub.raw`` extension: every frame goes through the outbox's writer task and the ASGI
``send`` chain, with uvicorn's own flow control. A reader that stalls long enough to pause
the transport must still get every event exactly once, in order.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from channels.session import SessionLimits
from tests.channels.conftest import HubFactory, dumps, recv_type
from tests.timing import units

EVENTS = 2000


@pytest.mark.parametrize("batch", [False, True], ids=["one-frame", "batch"])
async def test_without_a_raw_sink_every_event_arrives_once_in_order(
    make_hub: HubFactory, batch: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[WebSocketsSansIOProtocol] = []
    pause_writing = WebSocketsSansIOProtocol.pause_writing

    def counted(protocol: WebSocketsSansIOProtocol) -> None:
        pauses.append(protocol)
        pause_writing(protocol)

    monkeypatch.setattr(WebSocketsSansIOProtocol, "pause_writing", counted)
    hub = await make_hub(SessionLimits(soft_limit=64, hard_limit=4 * EVENTS, heartbeat=units(50)))
    query = "&batch=1" if batch else ""
    ws = await websockets.connect(  # max_queue=1: the client stops reading, TCP fills up
        f"{hub.url}?token=read-t{query}", max_queue=1, compression=None, max_size=None
    )
    try:
        await recv_type(ws, "welcome")
        await ws.send(dumps({"op": "subscribe", "channels": ["signals"]}))
        await recv_type(ws, "subscribed")
        blob = "z" * 6000  # 12 MB in all: more than the socket buffers hold
        for i in range(EVENTS):
            await hub.broker.publish("signals", {"i": i, "blob": blob})
            if i % 100 == 0:
                await asyncio.sleep(0)  # bursts of 100, the writer runs in between
        seqs: list[int] = []
        while len(seqs) < EVENTS:
            raw = await asyncio.wait_for(ws.recv(), units(50))
            for line in str(raw).split("\n"):
                message = json.loads(line)
                assert message["type"] == "event", message
                seqs.append(message["seq"])
        assert seqs == list(range(1, EVENTS + 1)), "no gap, no duplicate"
        assert pauses, "the stalled reader paused the server's transport"
        lane = hub.node.lane
        assert (lane.flushes, lane.writes) == (0, 0), "nothing went through the direct path"
    finally:
        await ws.close()
