"""The broker contract: per-channel sequencing, history, last values and fan-in.

A broker assigns each publication its channel's gap-free ``seq`` (1, 2, 3…), a
server time ``ts`` (epoch ms) and the channel's ``epoch`` (a short string that
changes whenever the channel's history is lost), keeps a bounded history per
channel and, for state channels, the last value (per ``key`` — the symbol — for
ticks), then hands the publication to the one handler set by the local
:class:`~channels.node.Node`. Backends are chosen by URL in :func:`create_broker`:
``memory://`` (default) or ``redis://``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgspec

__all__ = ["Broker", "Handler", "Publication", "create_broker", "encode_data"]


class Publication(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One message on a channel; ``data`` is the pre-encoded JSON payload."""

    channel: str
    seq: int
    ts: int
    epoch: str
    key: str | None = None
    data: msgspec.Raw


Handler = Callable[[Publication], None]

_encoder = msgspec.json.Encoder()


def encode_data(data: object) -> msgspec.Raw:
    """Payload as pre-encoded JSON: bytes/Raw are taken as JSON already, anything else encoded."""
    if isinstance(data, msgspec.Raw):
        return data
    if isinstance(data, bytes | bytearray | memoryview):
        return msgspec.Raw(bytes(data))
    return msgspec.Raw(_encoder.encode(data))


class Broker(Protocol):
    """What the node and the hub need from a broker backend (memory or Redis)."""

    async def connect(self) -> None:
        """Open connections; called once before use."""

    async def close(self) -> None:
        """Release connections; the broker is unusable afterwards."""

    async def publish(self, channel: str, data: object, *, key: str | None = None) -> Publication:
        """Sequence, retain and fan out ``data`` (a struct, a JSON-able value or JSON bytes)."""

    async def last(self, channel: str) -> list[Publication]:
        """The retained value(s) of a state channel, one per key, oldest seq first.

        Must be one consistent read: every key's value as of one moment.
        """

    async def history(
        self, channel: str, since_seq: int, epoch: str | None = None
    ) -> list[Publication] | None:
        """Publications with ``seq > since_seq``; None when history no longer reaches back,
        ``since_seq`` is ahead of the stream, or ``epoch`` is given and is not the current one."""

    async def epoch(self, channel: str) -> str:
        """The channel's current epoch."""

    async def channels(self, pattern: str) -> list[str]:
        """Names of channels matching ``pattern`` that hold a value or history."""

    async def subscribe(self, channel: str) -> None:
        """Start receiving ``channel`` (or a pattern) from upstream; no-op in memory."""

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel`` (or a pattern) from upstream; no-op in memory."""

    def set_handler(self, handler: Handler) -> None:
        """The callback called (synchronously, in seq order) with every publication."""

    def status(self) -> dict[str, Any]:
        """For ``/api/status``: at least ``kind`` (``memory``/``redis``) and ``healthy``."""


def create_broker(url: str | None, *, history_size: int = 1000, prefix: str = "mt4hub") -> Broker:
    """A broker for ``url``: None or ``memory://`` → in-process; ``redis://`` → Redis."""
    scheme = (url or "memory://").split("://", 1)[0]
    if scheme == "memory":
        from channels.memory import MemoryBroker

        return MemoryBroker(history_size=history_size)
    if scheme in ("redis", "rediss"):
        from channels.redis import RedisBroker

        return RedisBroker(url, history_size=history_size, prefix=prefix)
    raise ValueError(f"broker url {url!r}: scheme must be memory:// or redis://")
