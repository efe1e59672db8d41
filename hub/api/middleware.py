"""HTTP middleware: one access-log line per request (the log formatter masks secrets and
escapes control characters, ``hub/logs.py``)."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AccessLog"]

log = logging.getLogger("mt4hub.access")


class AccessLog:
    """``http GET /api/agents?token=*** 200 1.2ms`` — never the body; the token is masked
    by the formatter, as in every line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            target = scope["path"] + (f"?{query}" if query else "")
            client = scope.get("client") or ("-", 0)
            log.info(
                "http %s %s %d %.1fms client=%s",
                scope["method"],
                target,
                status,
                (time.perf_counter() - start) * 1000,
                client[0],
            )
