"""``mt4hub tail``: print channel messages as JSON lines, resuming across reconnects."""

from __future__ import annotations

import json
import sys

from channels.client import HubClient

__all__ = ["tail"]


async def tail(url: str, token: str, channels: list[str], *, snapshots: bool = True) -> None:
    async with HubClient(url, token, batch=True) as client:
        reply = await client.subscribe(channels)
        if reply.get("type") == "error":
            error = reply.get("error", {})
            print(f"mt4hub tail: {error.get('code')}: {error.get('message')}", file=sys.stderr)
            raise SystemExit(1)
        async for message in client:
            kind = message.get("type")
            if kind == "event" or (snapshots and kind == "snapshot"):
                sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
                sys.stdout.flush()
