"""Starlette adapters: a :class:`~channels.session.Transport` over a Starlette WebSocket.

Under uvicorn with ``ws=PreframedWebSocketProtocol`` (re-exported here) the transport also
offers the connection's :class:`~channels.uvicorn_ws.RawSocket` as ``raw``, and the session
writes pre-framed messages directly; elsewhere ``raw`` is None and it uses ``send_text``.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote_plus

from starlette.websockets import WebSocket

from channels.errors import ProtocolError
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


def bearer_token(headers: Mapping[str, str], query_string: bytes) -> str | None:
    """The token from ``Authorization: Bearer T`` or ``?token=T`` (header first).

    The query key must be written plainly: one that only decodes to ``token``
    (``%74oken``) is refused (``unauthorized``), never taken silently, since logs, proxies
    and this hub's masking look for the plain key."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    for pair in query_string.decode("latin-1").split("&"):
        key, _, raw = pair.partition("=")
        if key == "token":
            return unquote_plus(raw) or None
        if unquote_plus(key) == "token":
            raise ProtocolError(
                "unauthorized", f"query key {key!r}: write it as 'token' (or send the header)"
            )
    return None


def wants_batch(query: Mapping[str, str]) -> bool:
    """True for ``?batch=1`` (or true/yes)."""
    return query.get("batch", "").lower() in ("1", "true", "yes")
