"""The Python client: subscribe, iterate, and never see a gap or a duplicate across reconnects.

    async with HubClient("ws://127.0.0.1:8090/ws", token) as hub:
        await hub.subscribe(["agent:*:ticks", "summary"])
        async for message in hub:          # snapshot / event (and error) dicts
            print(message)

It reconnects with exponential backoff and jitter and resubscribes with ``since``
``{seq, epoch}`` per channel (the highest seq it delivered: events are gap-free per
channel, also for ticks), dropping anything at or below what it already delivered.
When the server cannot recover (``recovered: false``) a snapshot follows instead.
:meth:`HubClient.request` sends an op and waits for the ``result``/``error`` with its id.

A refused token is not retried: entering the client (or iterating it, if the hub refuses
later) raises :class:`HubRefused`. With ``connect_timeout`` set, entering raises
:class:`HubUnreachable` when no connection succeeded within that many seconds (by default
it waits as long as it takes, like the reconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

__all__ = ["HubClient", "HubRefused", "HubUnreachable"]

log = logging.getLogger(__name__)

Message = dict[str, Any]


class HubRefused(ConnectionError):
    """The hub answered the login with an error (a wrong or expired token): ``code``,
    ``message`` as it sent them."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class HubUnreachable(ConnectionError):
    """No connection to the hub within ``connect_timeout``; the last error is the cause."""


_FAILED: Message = {"type": "_failed"}  # queued when the client stops for good


class HubClient:
    """A reconnecting, resuming client of the hub's ``/ws``."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        batch: bool = True,
        backoff_min: float = 0.1,
        backoff_max: float = 10.0,
        queue_size: int = 10_000,
        request_timeout: float = 10.0,
        connect_timeout: float | None = None,
    ) -> None:
        self._url = url + ("&" if "?" in url else "?") + "batch=1" if batch else url
        self._token = token
        self._backoff = (backoff_min, backoff_max)
        self._request_timeout = request_timeout
        self._connect_timeout = connect_timeout
        self._last_error: BaseException | None = None
        self._failure: HubRefused | None = None
        self._channels: list[str] = []
        self._seq: dict[str, int] = {}
        self._epoch: dict[str, str] = {}
        self._inbox: asyncio.Queue[Message] = asyncio.Queue(queue_size)
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._ids = itertools.count(1)
        self._ws: websockets.ClientConnection | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reconnects = 0

    async def __aenter__(self) -> HubClient:
        self._task = asyncio.create_task(self._run())
        connected = asyncio.create_task(self._connected.wait())
        try:
            await asyncio.wait(
                [connected, self._task],
                timeout=self._connect_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            connected.cancel()
        if self._connected.is_set():
            return self
        task, self._task = self._task, None
        if task.done():
            task.result()  # a refusal, or a bug in the loop
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        reason = self._last_error or f"no answer within {self._connect_timeout:g} s"
        raise HubUnreachable(str(reason)) from self._last_error

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._ws is not None:
            await self._ws.close()

    async def subscribe(self, channels: list[str]) -> Message:
        """Subscribe (kept across reconnects); returns the ``subscribed`` reply."""
        self._channels += [c for c in channels if c not in self._channels]
        return await self.request({"op": "subscribe", "channels": channels, **self._since()})

    async def request(self, op: dict[str, Any]) -> Message:
        """Send ``op`` with a fresh id; the reply with that id (result, error, subscribed…)."""
        await self._connected.wait()
        op_id = f"c{next(self._ids)}"
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[op_id] = future
        try:
            assert self._ws is not None
            await self._ws.send(json.dumps({**op, "id": op_id}))
            async with asyncio.timeout(self._request_timeout):
                return await future
        finally:
            self._pending.pop(op_id, None)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Message]:
        while True:
            message = await self._inbox.get()
            if message is _FAILED:
                assert self._failure is not None
                raise self._failure
            yield message

    def _since(self) -> dict[str, Any]:
        since = {
            ch: {"seq": seq, "epoch": self._epoch[ch]}
            for ch, seq in self._seq.items()
            if seq and ch in self._epoch
        }
        return {"since": since} if since else {}

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                async with websockets.connect(
                    self._url,
                    additional_headers={"Authorization": f"Bearer {self._token}"},
                    compression=None,
                    open_timeout=10,
                ) as ws:
                    async with asyncio.timeout(10):
                        welcome = json.loads(await ws.recv())
                    if welcome.get("type") == "error":
                        error = welcome.get("error") or {}
                        raise HubRefused(str(error.get("code")), str(error.get("message")))
                    if welcome.get("type") != "welcome":
                        raise ConnectionError(f"hub refused: {welcome}")
                    self._ws, attempt = ws, 0
                    if self._channels:
                        resubscribe = {"op": "subscribe", "channels": self._channels}
                        await ws.send(json.dumps({**resubscribe, **self._since()}))
                    self._connected.set()
                    async for frame in ws:
                        for line in str(frame).split("\n"):
                            await self._handle(json.loads(line))
            except HubRefused as exc:
                self._fail(exc)
                raise
            except (OSError, ConnectionClosed, TimeoutError, ConnectionError, InvalidStatus) as exc:
                log.info("hub connection lost (%r); reconnecting", exc)
                self._last_error = exc
            self._connected.clear()
            self._ws = None
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection to the hub lost"))
            attempt += 1
            self.reconnects += 1
            low, high = self._backoff
            delay = min(high, low * 2 ** min(attempt, 16))
            await asyncio.sleep(random.uniform(delay / 2, delay))

    def _fail(self, exc: HubRefused) -> None:
        """Stop for good: pending requests and the iterator get ``exc``."""
        self._failure = exc
        self._connected.clear()
        self._ws = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)
        with contextlib.suppress(asyncio.QueueFull):
            self._inbox.put_nowait(_FAILED)

    async def _handle(self, message: Message) -> None:
        kind = message.get("type")
        if kind in ("event", "snapshot"):
            channel, seq = message["ch"], message["seq"]
            if "epoch" in message and message["epoch"] != self._epoch.get(channel):
                self._epoch[channel] = message["epoch"]
                self._seq[channel] = 0
            if kind == "event" and seq <= self._seq.get(channel, 0):
                return  # already delivered
            self._seq[channel] = max(seq, self._seq.get(channel, 0))
            await self._inbox.put(message)
            return
        if kind == "subscribed":
            for channel, epoch in message.get("epochs", {}).items():
                if self._epoch.get(channel) != epoch:
                    self._epoch[channel] = epoch
                    self._seq[channel] = 0
        future = self._pending.get(str(message.get("id")))
        if future is not None and not future.done():
            future.set_result(message)
        elif kind == "error":
            await self._inbox.put(message)
