"""A local HTTP receiver for notification tests (a real aiohttp server on 127.0.0.1)."""

from __future__ import annotations

import json
import socket
from typing import Any

import msgspec
from aiohttp import web

__all__ = ["Received", "Receiver"]


class Received(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Records every POST; :meth:`stop` then :meth:`start` brings it back on the same port."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[Received] = []
        self.answer = 200
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            Received(path=request.path, headers=dict(request.headers), body=await request.read())
        )
        return web.json_response({"ok": self.answer == 200}, status=self.answer)

    def events(self) -> list[str]:
        return [r.json()["event"] for r in self.requests if r.path == "/hook"]
