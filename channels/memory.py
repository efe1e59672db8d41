"""The in-process broker: sequencing, bounded history and last values in dicts."""

from __future__ import annotations

import secrets
from collections import deque
from typing import Any

from channels import names
from channels.broker import Handler, Publication, encode_data
from channels.clock import now_ms

__all__ = ["MemoryBroker"]


class _Stream:
    __slots__ = ("history", "last", "seq")

    def __init__(self, history_size: int) -> None:
        self.seq = 0
        self.history: deque[Publication] = deque(maxlen=history_size)
        self.last: dict[str | None, Publication] = {}


class MemoryBroker:
    """One process's broker. Its epoch is random per instance: a restart loses history."""

    def __init__(self, history_size: int = 1000) -> None:
        if history_size < 1:
            raise ValueError(f"history_size: must be >= 1, got {history_size}")
        self._history_size = history_size
        self._epoch = secrets.token_hex(4)
        self._streams: dict[str, _Stream] = {}
        self._handler: Handler | None = None

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        self._handler = None

    def set_handler(self, handler: Handler) -> None:
        self._handler = handler

    def status(self) -> dict[str, Any]:
        """For /api/status: always healthy (nothing to lose a connection to)."""
        return {"kind": "memory", "healthy": True, "channels": len(self._streams)}

    async def publish(self, channel: str, data: object, *, key: str | None = None) -> Publication:
        stream = self._streams.get(channel)
        if stream is None:
            names.validate(channel)
            if names.is_pattern(channel):
                raise ValueError(f"channel {channel!r}: cannot publish to a pattern")
            stream = self._streams[channel] = _Stream(self._history_size)
        stream.seq += 1
        pub = Publication(
            channel=channel,
            seq=stream.seq,
            ts=now_ms(),
            epoch=self._epoch,
            key=key,
            data=encode_data(data),
        )
        stream.history.append(pub)
        if names.is_state(channel):
            stream.last.pop(key, None)  # keep the dict ordered by seq
            stream.last[key] = pub
        if self._handler is not None:
            self._handler(pub)
        return pub

    async def last(self, channel: str) -> list[Publication]:
        stream = self._streams.get(channel)
        return list(stream.last.values()) if stream is not None else []

    async def history(
        self, channel: str, since_seq: int, epoch: str | None = None
    ) -> list[Publication] | None:
        if epoch is not None and epoch != self._epoch:
            return None
        stream = self._streams.get(channel)
        current = stream.seq if stream is not None else 0
        if since_seq > current:
            return None
        if stream is None or since_seq == current:
            return []
        oldest = stream.history[0].seq
        if since_seq < oldest - 1:
            return None
        return [pub for pub in stream.history if pub.seq > since_seq]

    async def epoch(self, channel: str) -> str:
        return self._epoch

    async def channels(self, pattern: str) -> list[str]:
        return [name for name in self._streams if names.matches(pattern, name)]

    async def subscribe(self, channel: str) -> None:
        return None

    async def unsubscribe(self, channel: str) -> None:
        return None
