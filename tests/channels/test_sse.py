"""The SSE mirror over real uvicorn, read with httpx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from channels.errors import ProtocolError
from channels.memory import MemoryBroker
from channels.node import Node
from channels.sse import SseStream, parse_channels
from tests.channels.conftest import serve_app
from tests.timing import units


@pytest.fixture
async def sse() -> AsyncIterator[tuple[str, MemoryBroker]]:
    broker = MemoryBroker()
    node = Node(broker)

    async def stream(request: Request) -> Response:
        try:
            body = SseStream(
                node,
                parse_channels(request.query_params.get("channels")),
                last_event_id=request.headers.get("last-event-id"),
                heartbeat=units(2),
            )
        except ProtocolError as exc:
            return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, 400)
        return StreamingResponse(body, media_type="text/event-stream")

    async with serve_app(Starlette(routes=[Route("/api/stream", stream)])) as (_, port):
        yield f"http://127.0.0.1:{port}/api/stream", broker


async def read_messages(
    response: httpx.Response, count: int
) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    ids: list[str] = []
    data: list[dict[str, Any]] = []
    comments: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("id: "):
            ids.append(line[4:])
        elif line.startswith("data: "):
            data.append(json.loads(line[6:]))
        elif line.startswith(":"):
            comments.append(line)
        if len(data) >= count:
            break
    return ids, data, comments


async def test_sse_sends_snapshot_then_events_with_seq_ids(
    sse: tuple[str, MemoryBroker],
) -> None:
    url, broker = sse
    await broker.publish("summary", {"total": 1})
    async with (
        httpx.AsyncClient(timeout=units(50)) as client,
        client.stream("GET", url, params={"channels": "summary"}) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        await broker.publish("summary", {"total": 2})
        ids, data, _ = await read_messages(response, 2)
    assert ids == ["1", "2"]
    assert [(d["type"], d["data"]) for d in data] == [
        ("snapshot", {"total": 1}),
        ("event", {"total": 2}),
    ]


async def test_sse_resumes_from_last_event_id(sse: tuple[str, MemoryBroker]) -> None:
    url, broker = sse
    for i in range(4):
        await broker.publish("signals", {"i": i})
    await broker.publish("system", {"notice": "x"})
    headers = {"Last-Event-ID": "2,1"}
    async with (
        httpx.AsyncClient(timeout=units(50)) as client,
        client.stream("GET", url, params={"channels": "signals,system"}, headers=headers) as r,
    ):
        await broker.publish("system", {"notice": "y"})
        ids, data, _ = await read_messages(r, 3)
    assert [(d["ch"], d["seq"]) for d in data] == [("signals", 3), ("signals", 4), ("system", 2)]
    assert ids == ["3,1", "4,1", "4,2"]


async def test_sse_keeps_idle_streams_alive(sse: tuple[str, MemoryBroker]) -> None:
    url, _ = sse
    async with (
        httpx.AsyncClient(timeout=units(50)) as client,
        client.stream("GET", url, params={"channels": "system"}) as response,
    ):
        comments: list[str] = []
        async for line in response.aiter_lines():
            if line.startswith(":"):
                comments.append(line)
            if len(comments) >= 2:
                break
    assert comments == [": connected", ": keep-alive"]


async def test_sse_refuses_unknown_channels(sse: tuple[str, MemoryBroker]) -> None:
    url, _ = sse
    async with httpx.AsyncClient(timeout=units(50)) as client:
        response = await client.get(url, params={"channels": "summary,bogus"})
    assert response.status_code == 400
    assert "channels[1]: unknown channel 'bogus'" in response.json()["error"]["message"]
