"""Async client for one EA Bridge: one pooled aiohttp session, per-call timeouts, typed errors.

BridgeError
├── BridgeUnavailable   connection refused or dropped (agent_offline)
├── BridgeTimeout       no answer in time; for an order the outcome is unknown (bridge_timeout)
├── BridgeServerError   5xx from the bridge (bridge_error)
├── BridgeRejected      4xx: the bridge refused the request, e.g. bad stops (bridge_error)
└── BridgeProtocolError the answer is not the bridge contract (bridge_error)
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any, TypeVar

import aiohttp
import msgspec

from hub.bridge.models import (
    Account,
    BridgeErrorBody,
    ClosedTrade,
    CloseOrder,
    ModifyOrder,
    Position,
    Tick,
    TradeOrder,
)

__all__ = [
    "BridgeClient",
    "BridgeError",
    "BridgeProtocolError",
    "BridgeRejected",
    "BridgeServerError",
    "BridgeTimeout",
    "BridgeUnavailable",
]

T = TypeVar("T")

_ENCODER = msgspec.json.Encoder()
EXTRA_READS = 2  # bridge reads for REST clients at once (the pool holds 8 connections)


class BridgeError(Exception):
    """Base of every bridge failure; ``code`` is the hub error code it maps to."""

    code = "bridge_error"


class BridgeUnavailable(BridgeError):
    """``sent`` is False when the connection was never made (the request surely not seen)."""

    code = "agent_offline"

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class BridgeTimeout(BridgeError):
    code = "bridge_timeout"


class BridgeServerError(BridgeError):
    pass


class BridgeRejected(BridgeError):
    pass


class BridgeProtocolError(BridgeError):
    pass


def _finite(obj: Any) -> None:
    """Reject NaN/Infinity anywhere in a decoded payload: never a price or a risk input."""
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise BridgeProtocolError("non-finite number in bridge answer")
    elif isinstance(obj, msgspec.Struct):
        for field in obj.__struct_fields__:
            _finite(getattr(obj, field))
    elif isinstance(obj, list):
        for item in obj:
            _finite(item)


class BridgeClient:
    """Talks to one bridge at ``base_url`` (``http://host:port``)."""

    def __init__(self, base_url: str, *, timeout: float = 2.0, trade_timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.trade_timeout = trade_timeout
        self._session: aiohttp.ClientSession | None = None
        # Reads for REST clients: shared for a while, and at most two at once, so that they
        # never take the pool's connections from polling and trading.
        self._recent: dict[int | None, tuple[float, asyncio.Future[list[ClosedTrade]]]] = {}
        self._extra_reads = asyncio.Semaphore(EXTRA_READS)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=8, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self,
        method: str,
        path: str,
        typ: type[T],
        *,
        body: msgspec.Struct | None = None,
        params: dict[str, str] | None = None,
        limit: float | None = None,
    ) -> T:
        url = self.base_url + path
        limit = limit if limit is not None else self.timeout
        data = _ENCODER.encode(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else None
        try:
            async with asyncio.timeout(limit):
                async with self._http().request(
                    method, url, data=data, params=params, headers=headers
                ) as resp:
                    raw = await resp.read()
                    status = resp.status
        except TimeoutError:
            raise BridgeTimeout(f"{method} {path}: no answer within {limit:g}s") from None
        except aiohttp.ClientConnectorError as exc:
            raise BridgeUnavailable(f"{method} {path}: cannot connect: {exc}", sent=False) from None
        except (aiohttp.ClientConnectionError, OSError) as exc:
            message = f"{method} {path}: connection lost: {type(exc).__name__}: {exc}"
            raise BridgeUnavailable(message, sent=True) from None
        except aiohttp.ClientError as exc:
            raise BridgeProtocolError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if status >= 500:
            raise BridgeServerError(f"{method} {path}: HTTP {status}: {_error_text(raw)}")
        if status >= 400:
            raise BridgeRejected(f"{_error_text(raw)} (HTTP {status})")
        try:
            result = msgspec.json.decode(raw, type=typ)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise BridgeProtocolError(f"{method} {path}: bad answer: {exc}") from None
        _finite(result)
        return result

    async def account(self) -> Account:
        return await self._call("GET", "/account", Account)

    async def tick(self, symbol: str) -> Tick:
        tick = await self._call("GET", f"/tick/{symbol}", Tick)
        if tick.symbol != symbol:
            raise BridgeProtocolError(f"GET /tick/{symbol}: answered for {tick.symbol!r}")
        if tick.bid > tick.ask:
            raise BridgeProtocolError(f"GET /tick/{symbol}: bid {tick.bid} above ask {tick.ask}")
        return tick

    async def positions(self) -> list[Position]:
        return await self._call("GET", "/positions", list[Position])

    async def history(self, since_ms: int | None = None) -> list[ClosedTrade]:
        params = {"since": str(since_ms)} if since_ms is not None else None
        return await self._call("GET", "/history", list[ClosedTrade], params=params)

    async def recent_history(self, since_ms: int | None, max_age: float) -> list[ClosedTrade]:
        """``history(since_ms)`` as read at most ``max_age`` seconds ago: one bridge call
        serves every caller of that window (REST reads), never more than
        ``EXTRA_READS`` of them at once."""
        now = time.monotonic()
        self._recent = {k: v for k, v in self._recent.items() if now - v[0] <= max_age}
        entry = self._recent.get(since_ms)
        if entry is None:
            read = asyncio.ensure_future(self._read(since_ms))
            read.add_done_callback(lambda done: done.cancelled() or done.exception())  # seen
            entry = self._recent[since_ms] = (now, read)
        return await asyncio.shield(entry[1])

    async def _read(self, since_ms: int | None) -> list[ClosedTrade]:
        async with self._extra_reads:
            return await self.history(since_ms)

    async def trade(self, order: TradeOrder) -> Position:
        return await self._call("POST", "/trade", Position, body=order, limit=self.trade_timeout)

    async def close_position(self, order: CloseOrder) -> ClosedTrade:
        return await self._call("POST", "/close", ClosedTrade, body=order, limit=self.trade_timeout)

    async def modify(self, order: ModifyOrder) -> Position:
        return await self._call("POST", "/modify", Position, body=order, limit=self.trade_timeout)


def _error_text(raw: bytes) -> str:
    try:
        return msgspec.json.decode(raw, type=BridgeErrorBody).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = raw[:200].decode("utf-8", "replace").strip()
        return text or "no body"
