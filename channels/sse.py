"""Server-Sent Events mirror of the channels (``GET /api/stream?channels=a,b``).

Each message is the same JSON object the WebSocket sends (``snapshot`` first, then
``event``), written as ``id: …`` + ``data: {…}``. For one channel the id is its seq;
for several it is a positional list over the requested names (``"41,7"``, empty for
a name not seen yet or a pattern), so ``Last-Event-ID`` resumes each like ``since``.
More than ``max_subscriptions`` names is ``rate_limited``, as on the socket. Slow readers
get the WebSocket policy: state conflates, and past the hard limit an
``event: error`` with ``slow_consumer`` ends the stream. Idle streams get a
``: keep-alive`` comment every ``heartbeat`` seconds.

Usage (Starlette)::

    stream = SseStream(node, ["agent:agent_1:ticks"], agents=access.agents,
                       last_event_id=request.headers.get("last-event-id"))  # may raise
    return StreamingResponse(stream, media_type="text/event-stream")
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from channels import names
from channels.delivery import Outbox
from channels.errors import InvalidChannel, ProtocolError, too_many_subscriptions
from channels.feed import Feed
from channels.node import Node
from channels.protocol import Error, ErrorBody, SincePosition, encode

__all__ = ["SseStream", "parse_channels"]


def parse_channels(query: str | None) -> list[str]:
    """``a,b`` → ``["a", "b"]``; raises :class:`ProtocolError` (bad_request) naming the problem."""
    channels = [c.strip() for c in (query or "").split(",") if c.strip()]
    if not channels:
        raise ProtocolError(
            "bad_request", "channels: give at least one channel, e.g. ?channels=summary"
        )
    return channels


class SseStream:
    """An async iterator of ``text/event-stream`` chunks for one HTTP client."""

    def __init__(
        self,
        node: Node,
        channels: list[str],
        *,
        agents: frozenset[str] | None = None,
        last_event_id: str | None = None,
        heartbeat: float = 15.0,
        soft_limit: int = 256,
        hard_limit: int = 4096,
        max_subscriptions: int = 256,
    ) -> None:
        if len(set(channels)) > max_subscriptions:
            raise too_many_subscriptions(max_subscriptions)
        for i, name in enumerate(channels):
            try:
                names.validate(name)
            except InvalidChannel as exc:
                raise ProtocolError("bad_request", f"channels[{i}]: {exc}") from None
            refused = names.refusal(name, agents)
            if refused is not None:
                raise ProtocolError("forbidden", f"channels[{i}]: {refused}")
        self._node = node
        self._channels = channels
        self._agents = agents
        self._heartbeat = heartbeat
        self._soft = soft_limit
        self._hard = hard_limit
        self._positions = self._parse_last_event_id(last_event_id)

    def _parse_last_event_id(self, value: str | None) -> list[int]:
        positions = [0] * len(self._channels)
        if not value:
            return positions
        parts = value.split(",")
        if len(parts) != len(self._channels):
            raise ProtocolError(
                "bad_request", f"Last-Event-ID: expected {len(self._channels)} positions"
            )
        for i, part in enumerate(parts):
            if part:
                if not part.isdigit():
                    raise ProtocolError("bad_request", f"Last-Event-ID: {part!r} is not a seq")
                positions[i] = int(part)
        return positions

    def _event_id(self) -> str:
        return ",".join(str(p) if p else "" for p in self._positions)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[str]:
        outbox = Outbox(soft_limit=self._soft, hard_limit=self._hard)
        feed = Feed(self._node, outbox, agents=self._agents, max_pending=self._hard)
        index = {name: i for i, name in enumerate(self._channels) if not names.is_pattern(name)}
        since: dict[str, int | SincePosition] = {
            name: self._positions[i] for name, i in index.items() if self._positions[i]
        }
        try:
            await feed.subscribe(self._channels, since, lambda result: None)
            yield ": connected\n\n"
            while True:
                ready = await outbox.wait(self._heartbeat)
                if outbox.overflowed:
                    error = Error(error=ErrorBody(code="slow_consumer", message="read faster"))
                    yield f"event: error\ndata: {encode(error).decode()}\n\n"
                    return
                if not ready:
                    yield ": keep-alive\n\n"
                    continue
                chunks: list[str] = []
                for item in outbox.take():
                    position = index.get(item.channel or "")
                    if position is not None:
                        self._positions[position] = item.seq
                    chunks.append(f"id: {self._event_id()}\ndata: {item.frame}\n\n")
                yield "".join(chunks)
        finally:
            await feed.close()
