"""Direct writes of pre-framed WebSocket messages under uvicorn's websockets-sansio protocol.

Server-to-client frames are unmasked, so one text message has the same frame bytes for
every subscriber: :class:`~channels.lane.Lane` builds them once and :class:`RawSocket` writes
them straight to the connection's transport, skipping the ASGI ``send`` chain (Starlette,
uvicorn's ``await writable``, the sans-I/O framing) for every message of every connection.

Run uvicorn with ``ws=PreframedWebSocketProtocol``: it is uvicorn's protocol plus a
:class:`RawSocket` in ``scope["extensions"]["mt4hub.raw"]`` and a writability callback fed
by the transport's ``pause_writing``/``resume_writing``. Everything else — the handshake,
reads, pings, close frames and close codes — stays uvicorn's, sent through ASGI as usual.
Without the extension (another server, the test client) the session falls back to
``send_text``.

Needs uvicorn >= 0.52.1 (pinned in ``pyproject.toml``): the websockets-sansio protocol
appeared in 0.35, its keepalive pings in 0.44, and only from 0.52.1 does it pause writing
(``writable`` cleared by ``pause_writing``, which is what makes a full sink spill into
the outbox) and flag a lost connection (``disconnected``, read by :attr:`RawSocket.closed`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

__all__ = ["RAW_EXTENSION", "PreframedWebSocketProtocol", "RawSocket"]

RAW_EXTENSION = "mt4hub.raw"


class RawSocket:
    """Write access to one accepted WebSocket's transport, for complete data frames only."""

    __slots__ = ("_proto", "on_writable")

    def __init__(self, proto: PreframedWebSocketProtocol) -> None:
        self._proto = proto
        self.on_writable: Callable[[], None] | None = None

    @property
    def closed(self) -> bool:
        """True once a close frame was sent or the connection is gone: write nothing more."""
        proto = self._proto
        return proto.close_sent or proto.disconnected or proto.transport.is_closing()

    @property
    def writable(self) -> bool:
        """False while the transport's buffer is over its high-water mark, or closed."""
        return self._proto.writable.is_set() and not self.closed

    def write(self, data: bytes) -> bool:
        """Write complete frames; False (nothing written) once the connection is closing."""
        if self.closed:
            return False
        self._proto.transport.write(data)
        return True

    def offer(self, data: bytes) -> bool:
        """:meth:`write` if :attr:`writable`, in one call (a group's write to each member)."""
        proto = self._proto
        if not proto.writable.is_set() or proto.close_sent or proto.disconnected:
            return False
        transport = proto.transport
        if transport.is_closing():
            return False
        transport.write(data)
        return True

    def buffer_size(self) -> int:
        """Bytes waiting in the transport's write buffer."""
        return self._proto.transport.get_write_buffer_size()


class _Inbox:
    """``asyncio.Queue``'s ``put_nowait``/``get``/``empty`` for one consumer (the ASGI
    ``receive`` of one socket), without the Queue's three deques and Event: ~3 KB less per
    connection, for its whole life."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def empty(self) -> bool:
        return not self._items

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.pop(0)


class _Flag:
    """``asyncio.Event``'s ``set``/``clear``/``is_set``/``wait`` without its deque."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> bool:
        if not self._set:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return True


class PreframedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol exposing a :class:`RawSocket` to the app.

    Its receive queue and ``writable`` event are the slim :class:`_Inbox` and
    :class:`_Flag` (the same calls uvicorn makes), for memory per idle connection.
    """

    raw: RawSocket | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = _Inbox()  # type: ignore[assignment]
        writable = _Flag()
        writable.set()
        self.writable = writable  # type: ignore[assignment]

    def handle_connect(self, event: Request) -> None:
        self.raw = RawSocket(self)
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][RAW_EXTENSION] = self.raw

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.accept" and self.handshake_complete:
            # The upgrade request and response are not read again (the scope has its own
            # copy of the headers): about 5 KB per connection for its whole life otherwise.
            # The request's headers are emptied too: the sans-I/O parser's generator frame
            # keeps the request object itself.
            self.request.headers.clear()
            del self.request, self.response

    def resume_writing(self) -> None:
        super().resume_writing()
        raw = self.raw
        if raw is not None and raw.on_writable is not None:
            raw.on_writable()
