"""``mt4hub tail``: print channel messages as JSON lines, resuming across reconnects.

It fails fast where waiting cannot help: no hub within ``connect_timeout`` at the URL, a
refused token or a refused subscription end it with one line on stderr and exit 1; a
reader that goes away (``| head``) ends it quietly.
"""

from __future__ import annotations

import json
import os
import sys

from websockets.exceptions import InvalidURI

from channels.client import HubClient, HubRefused, HubUnreachable

__all__ = ["tail"]


async def tail(
    url: str,
    token: str,
    channels: list[str],
    *,
    snapshots: bool = True,
    connect_timeout: float = 5.0,
) -> int:
    """Print until interrupted; the exit status when it has to stop."""
    try:
        async with HubClient(url, token, batch=True, connect_timeout=connect_timeout) as client:
            reply = await client.subscribe(channels)
            if reply.get("type") == "error":
                error = reply.get("error", {})
                return _fail(f"{error.get('code')}: {error.get('message')}")
            async for message in client:
                kind = message.get("type")
                if kind == "event" or (snapshots and kind == "snapshot"):
                    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
                    sys.stdout.flush()
                elif kind == "error":
                    error = message.get("error", {})
                    return _fail(f"{error.get('code')}: {error.get('message')}")
    except HubUnreachable as exc:
        return _fail(f"cannot connect to {url}: {exc} (is the hub running there? see --url)")
    except HubRefused as exc:
        return _fail(f"{url} refused the token: {exc}")
    except InvalidURI as exc:
        return _fail(f"--url: {exc} (expected ws://host:port/ws or wss://…)")
    except BrokenPipeError:
        # The reader is gone (`| head`): stop quietly, and let the interpreter's last
        # flush of stdout go nowhere instead of failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0


def _fail(message: str) -> int:
    print(f"mt4hub tail: {message}", file=sys.stderr)
    return 1
