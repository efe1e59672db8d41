"""Order events: each one published on ``agent:{id}:orders`` and journaled, in that order."""

from __future__ import annotations

from typing import Any

import msgspec

from channels.names import agent_channel
from hub.publisher import Publisher
from hub.trading.journal import Journal
from hub.trading.models import OrderEvent

__all__ = ["OrderEvents", "with_changes"]


class OrderEvents:
    def __init__(self, publisher: Publisher, journal: Journal) -> None:
        self.publisher = publisher
        self.journal = journal

    async def emit(
        self, event: OrderEvent, event_type: str, extra: dict[str, Any] | None = None
    ) -> None:
        """Publish ``event`` and journal it as ``event_type`` (``extra`` joins its metadata)."""
        await self.publisher.event(agent_channel(event.agent_id, "orders"), event)
        metadata = {k: v for k, v in msgspec.structs.asdict(event).items() if v is not None}
        if extra:
            metadata.update(extra)
        message = f"{event.command} {event.event}"
        if event.error:
            message += f": {event.error.get('message')}"
        self.journal.order(event, event_type, message, metadata)


def with_changes(event: OrderEvent, /, **changes: Any) -> OrderEvent:
    return msgspec.structs.replace(event, **changes)
