"""Live channels: ``/ws`` (the session lives in ``channels``), SSE, and channel history."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from channels import names
from channels.asgi import StarletteTransport, bearer_token, wants_batch
from channels.errors import InvalidChannel, ProtocolError
from channels.protocol import CommandOp
from channels.session import Access, CommandReply, Session, SessionLimits
from channels.sse import SseStream, parse_channels
from hub.api.commands import BY_NAME, ws_command
from hub.api.common import hub_of, json_response, require
from hub.errors import HubError

__all__ = ["routes"]

log = logging.getLogger("mt4hub.ws")


def origin_allowed(websocket: WebSocket, allowed: list[str]) -> bool:
    """Browsers send Origin: same-origin or a listed origin may connect; scripts send none."""
    origin = websocket.headers.get("origin")
    if origin is None or origin in allowed or "*" in allowed:
        return True
    host = websocket.headers.get("host", "")
    return origin.split("://", 1)[-1].rstrip("/") == host


async def ws_endpoint(websocket: WebSocket) -> None:
    hub = hub_of(websocket)
    if not origin_allowed(websocket, hub.config.auth.allowed_origins):
        log.warning("ws_origin_refused origin=%s", websocket.headers.get("origin"))
        await websocket.close(code=4003, reason="origin not allowed")
        return
    await websocket.accept()
    server = hub.config.server
    refused: ProtocolError | None = None
    try:
        token = bearer_token(websocket.headers, websocket.scope.get("query_string", b""))
    except ProtocolError as exc:  # answered by authenticate(): the error, then close 4001
        token, refused = "", exc

    async def authenticate(token: str) -> Access | None:
        if refused is not None:
            raise refused
        access = hub.auth.authenticate(token)
        if access is not None:
            try:
                hub.slots.claim(access)
            except HubError as exc:
                raise ProtocolError(exc.code, exc.message) from None
        return access

    def on_command(
        op: CommandOp, access: Access
    ) -> CommandReply | Callable[[], Awaitable[CommandReply]]:
        return ws_command(hub, op, access)

    session = Session(
        hub.node,
        StarletteTransport(websocket),
        authenticate=authenticate,
        on_command=on_command,
        commands=BY_NAME,
        token=token,
        batch=wants_batch(websocket.query_params),
        limits=SessionLimits(
            heartbeat=server.heartbeat,
            max_frame_bytes=server.max_frame_bytes,
            max_subscriptions=server.max_subscriptions,
            hard_limit=server.send_queue * 4,
            flush_interval=server.batch_flush_ms / 1000.0,
        ),
    )
    hub.sessions.add(session)
    try:
        await session.run()
    finally:
        hub.sessions.discard(session)
        if session.access is not None:
            hub.slots.release(session.access)


async def channel_history(request: Request) -> Response:
    access = require(request, "read")  # auth before anything about the channel is revealed
    channel = request.path_params["channel"]
    try:
        names.validate(channel)
    except InvalidChannel as exc:
        raise HubError("not_found", str(exc)) from None
    if names.is_pattern(channel):
        raise HubError(
            "bad_request", f"channel {channel!r}: history needs one channel, not a pattern"
        )
    refused = names.refusal(channel, access.agents)
    if refused is not None:
        raise HubError("forbidden", f"channel {channel!r}: {refused}")
    since_text = request.query_params.get("since", "0")
    if not since_text.isdigit():
        raise HubError("bad_request", "since: must be a seq (an integer >= 0)")
    epoch = request.query_params.get("epoch") or None
    broker = hub_of(request).broker
    pubs = await broker.history(channel, int(since_text), epoch)
    current = await broker.epoch(channel)
    if pubs is None:
        return json_response(
            {"channel": channel, "epoch": current, "recovered": False, "events": []}
        )
    return json_response(
        {
            "channel": channel,
            "epoch": current,
            "recovered": True,
            "events": [{"seq": p.seq, "ts": p.ts, "key": p.key, "data": p.data} for p in pubs],
        }
    )


class _SseResponse(StreamingResponse):
    """The stream, holding one of its token's connection slots until it ends however."""

    def __init__(self, stream: SseStream, release: Callable[[], None]) -> None:
        super().__init__(
            stream,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


async def sse_stream(request: Request) -> Response:
    access = require(request, "read")
    hub = hub_of(request)
    server = hub.config.server
    try:
        stream = SseStream(
            hub.node,
            parse_channels(request.query_params.get("channels")),
            agents=access.agents,
            last_event_id=request.headers.get("last-event-id"),
            heartbeat=server.heartbeat,
            max_subscriptions=server.max_subscriptions,
        )
    except ProtocolError as exc:
        raise HubError(exc.code, exc.message) from None
    hub.slots.claim(access)  # the same slots as the socket's
    return _SseResponse(stream, lambda: hub.slots.release(access))


routes = [
    Route("/api/stream", sse_stream),
    WebSocketRoute("/ws", ws_endpoint),
    Route("/api/channels/{channel}/history", channel_history),
]
