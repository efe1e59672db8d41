"""Starlette adapters: a :class:`~channels.session.Transport` over a Starlette WebSocket.

Under uvicorn with ``ws=PreframedWebSocketProtocol`` (re-exported here) the transport also
offers the connection's :class:`~channels.uvicorn_ws.RawSocket` as ``raw``, and the session
writes pre-framed messages directly; elsewhere ``raw`` is None and it uses ``send_text``.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.websockets import WebSocket

from channels.uvicorn_ws import RAW_EXTENSION, PreframedWebSocketProtocol, RawSocket

__all__ = ["PreframedWebSocketProtocol", "StarletteTransport", "bearer_token", "wants_batch"]


class StarletteTransport:
    """A Starlette ``WebSocket`` (already accepted) as a session transport."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket
        raw = websocket.scope.get("extensions", {}).get(RAW_EXTENSION)
        self.raw: RawSocket | None = raw if isinstance(raw, RawSocket) else None

    async def send_text(self, text: str) -> None:
        await self._ws.send_text(text)

    async def receive(self) -> str | bytes | None:
        message = await self._ws.receive()
        if message["type"] == "websocket.disconnect":
            return None
        text: str | None = message.get("text")
        if text is not None:
            return text
        data: bytes | None = message.get("bytes")
        return data if data is not None else b""

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code, reason)


def bearer_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token from ``Authorization: Bearer T`` or ``?token=T`` (header first)."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return query.get("token") or None


def wants_batch(query: Mapping[str, str]) -> bool:
    """True for ``?batch=1`` (or true/yes)."""
    return query.get("batch", "").lower() in ("1", "true", "yes")
