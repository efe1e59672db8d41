"""The load generator, in its own process: ``python -m bench.load``.

Many picows connections on uvloop in one process. Every connection counts the
messages it receives (a coalesced frame counts one per line); only every
``sample_every``-th connection parses its frames, reading each tick's ``time`` (its
scheduled publish time in epoch µs) to sample publish-to-receive latency.

Commands on stdin (JSON lines):
``{"cmd":"connect","url":…,"n":N,"batch":false,"subscribe":"agent:agent_1:ticks"|null,"sample_every":25}``,
``{"cmd":"mark","reset":true}`` (``t`` and ``count`` now; ``reset`` clears the samples and
starts timing this process's loop iterations), ``{"cmd":"stats"}`` (count and latency
percentiles since the last reset, and the loop timing as ``load_loop_*``: the harness's
own share of the latency), ``{"cmd":"close"}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from typing import Any

import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench._control import LoopProbe, raise_fd_limit, serve_commands
from bench._stats import summarize

__all__ = ["main"]

_TIME = re.compile(rb'"time":(\d+)')
_SUBSCRIBED = b'"type":"subscribed"'
_MAX_SAMPLES = 1_000_000
_CONNECT_CONCURRENCY = 128
_monotonic = time.monotonic


class _Tally:
    """What all connections of this process received."""

    __slots__ = ("closed", "count", "last_at", "samples")

    def __init__(self) -> None:
        self.count = 0
        self.last_at = time.monotonic()  # when the last message arrived
        self.closed = 0
        self.samples: list[int] = []  # latency in µs


class _Connection(WSListener):
    def __init__(
        self, tally: _Tally, *, batch: bool, sample: bool, subscribe: bytes | None
    ) -> None:
        super().__init__()
        self._tally = tally
        self._batch = batch
        self._sample = sample
        self._subscribe = subscribe
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        if self._subscribe is None:
            self.ready.set_result(None)
        else:
            transport.send(WSMsgType.TEXT, self._subscribe)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._tally.closed += 1
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("disconnected before subscribed"))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind != WSMsgType.TEXT:
            if kind == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
            return
        if not self.ready.done():
            if _SUBSCRIBED in frame.get_payload_as_bytes():
                self.ready.set_result(None)
            return
        tally = self._tally
        tally.last_at = _monotonic()
        if not (self._batch or self._sample):
            tally.count += 1
            return
        payload = frame.get_payload_as_bytes()
        tally.count += payload.count(b"\n") + 1 if self._batch else 1
        if self._sample and len(tally.samples) < _MAX_SAMPLES:
            now = time.time_ns() // 1000
            tally.samples.extend(now - int(m) for m in _TIME.findall(payload))


class LoadGenerator:
    def __init__(self) -> None:
        self.tally = _Tally()
        self.connections: list[_Connection] = []
        self.probe = LoopProbe()

    async def connect(self, command: dict[str, Any]) -> dict[str, Any]:
        url = str(command["url"])
        n = int(command["n"])
        batch = bool(command.get("batch", False))
        channel = command.get("subscribe")
        every = max(1, int(command.get("sample_every", 25)))
        timeout = float(command.get("timeout", 60.0))
        subscribe = (
            None
            if channel is None
            else json.dumps({"op": "subscribe", "id": "s", "channels": [channel]}).encode()
        )
        gate = asyncio.Semaphore(_CONNECT_CONCURRENCY)
        started = time.monotonic()
        first = len(self.connections)

        async def one(i: int) -> None:
            listener = _Connection(
                self.tally, batch=batch, sample=i % every == 0, subscribe=subscribe
            )
            async with gate:
                await ws_connect(
                    lambda: listener,
                    url,
                    websocket_handshake_timeout=timeout,
                    max_frame_size=64 * 1024 * 1024,
                )
                self.connections.append(listener)
                async with asyncio.timeout(timeout):
                    await listener.ready

        results = await asyncio.gather(*(one(first + i) for i in range(n)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise ConnectionError(f"{len(errors)} of {n} connections failed; first: {errors[0]!r}")
        return {"connected": n, "seconds": time.monotonic() - started}

    def mark(self, command: dict[str, Any]) -> dict[str, Any]:
        if command.get("reset"):
            self.tally.samples = []
            self.probe.start()
        return {"t": time.monotonic(), "count": self.tally.count}

    def stats(self) -> dict[str, Any]:
        tally = self.tally
        return {
            "count": tally.count,
            "last_at": tally.last_at,
            "closed": tally.closed,
            "open": len(self.connections) - tally.closed,
            **summarize([s / 1000 for s in tally.samples]),
            **{f"load_{k}": v for k, v in self.probe.stop().items()},
        }

    async def close(self) -> dict[str, Any]:
        for listener in self.connections:
            if listener.transport is not None and not listener.transport.is_disconnected:
                listener.transport.send_close()
                listener.transport.disconnect()
        for listener in self.connections:
            if listener.transport is not None:
                async with asyncio.timeout(10):
                    await listener.transport.wait_disconnected()
        closed = len(self.connections)
        self.connections = []
        self.tally = _Tally()
        return {"closed": closed}

    async def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        cmd = command.get("cmd")
        if cmd == "connect":
            return await self.connect(command)
        if cmd == "mark":
            return self.mark(command)
        if cmd == "stats":
            return self.stats()
        if cmd == "close":
            return await self.close()
        raise ValueError(f"cmd: unknown command {cmd!r}")


async def _main() -> None:
    limit = raise_fd_limit()
    generator = LoadGenerator()
    await serve_commands({"pid": os.getpid(), "fd_limit": limit}, generator.handle)
    await generator.close()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    uvloop.run(_main())


if __name__ == "__main__":
    main()
