"""uvicorn as the hub runs it: one set of options (``mt4hub run``, the test kit, the bench).

uvicorn closes a keep-alive connection idle between requests (``server.idle_timeout``)
but sets no deadline on a request's head: a connection that sends nothing, or half a
header, would stay open for good (slowloris). :class:`HeadDeadline` is uvicorn's
httptools protocol plus that deadline (``server.header_timeout``): from the connection's
start, and again from the first byte of each next request, its headers must be complete
in time or the connection is closed. ``server.max_concurrency`` caps connections and
requests in progress (uvicorn answers 503 past it); ``server.shutdown_timeout`` bounds
the wait for open streams (SSE) at shutdown.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from channels.asgi import PreframedWebSocketProtocol
from hub.config import ServerConfig

__all__ = ["HeadDeadline", "uvicorn_options"]


class HeadDeadline(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's head."""

    header_timeout = 10.0  # set per server by :func:`uvicorn_options`

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_late)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def uvicorn_options(server: ServerConfig) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``/``uvicorn.Config`` (besides app, host, port)."""
    head_deadline = type("HeadDeadline", (HeadDeadline,), {"header_timeout": server.header_timeout})
    return {
        "http": head_deadline,
        "ws": PreframedWebSocketProtocol,  # websockets-sansio, plus direct writes of shared frames
        "ws_per_message_deflate": False,
        "ws_ping_interval": server.heartbeat,
        "ws_ping_timeout": server.heartbeat,
        "ws_max_size": server.max_frame_bytes * 4,
        "timeout_keep_alive": server.idle_timeout,
        "limit_concurrency": server.max_concurrency,
        "timeout_graceful_shutdown": server.shutdown_timeout,
        "proxy_headers": True,
        "log_config": None,
        "access_log": False,  # the hub's own access log masks secrets (hub/api/middleware.py)
    }
