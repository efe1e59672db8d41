"""The exceptions of the ``channels`` package.

- :class:`ChannelsError` — base of everything raised here.
  - :class:`InvalidChannel` (also a ``ValueError``) — a name or pattern that is not a channel.
  - :class:`ProtocolError` — a client frame the server refuses; carries an error ``code`` of
    ``docs/protocol.md`` (``bad_request``, ``forbidden``, ``rate_limited``…), a message
    naming the field, and the frame's ``id`` when it could be read.
    :func:`channels.protocol.decode_op` returns it rather than raising, so the hot path
    needs no ``try``.
"""

from __future__ import annotations

__all__ = ["ChannelsError", "InvalidChannel", "ProtocolError", "too_many_subscriptions"]


class ChannelsError(Exception):
    """Base class of the channels package's errors."""


class InvalidChannel(ChannelsError, ValueError):
    """A channel name or pattern that does not name any channel (see :mod:`channels.names`)."""


class ProtocolError(ChannelsError):
    """A refused client frame: error ``code``, a message naming the field, and its ``id``."""

    def __init__(self, code: str, message: str, id: str | int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.id = id

    def __repr__(self) -> str:
        return f"ProtocolError({self.code!r}, {self.message!r}, id={self.id!r})"


def too_many_subscriptions(limit: int) -> ProtocolError:
    """Over the per-connection subscription cap (the socket and SSE alike)."""
    return ProtocolError("rate_limited", f"channels: at most {limit} subscriptions per connection")
