"""Starlette adapters: a :class:`~channels.session.Transport` over a Starlette WebSocket."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.websockets import WebSocket

__all__ = ["StarletteTransport", "bearer_token", "wants_batch"]


class StarletteTransport:
    """A Starlette ``WebSocket`` (already accepted) as a session transport."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

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
