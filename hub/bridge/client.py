"""Async client for one EA Bridge: one pooled aiohttp session, per-call timeouts, typed errors,
and the bridge's dialect (its profile, :mod:`hub.bridge.dialect`) both ways.

The errors (:mod:`hub.bridge.errors`) are re-exported here. Writes that the trade server
refused with 136 (off quotes) or 146 (trade context busy) are sent once more after
:data:`~hub.bridge.mt4_errors.RETRY_DELAY`: those codes prove nothing was executed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import aiohttp

from channels.clock import now_ms
from hub.bridge.dialect import Dialect, RowSkips
from hub.bridge.errors import (
    BridgeError,
    BridgeNotSupported,
    BridgeProtocolError,
    BridgeRejected,
    BridgeServerError,
    BridgeTimeout,
    BridgeUnavailable,
)
from hub.bridge.models import (
    Account,
    ClosedTrade,
    CloseOrder,
    ModifyOrder,
    Position,
    Tick,
    TradeOrder,
)
from hub.bridge.mt4_errors import RETRY_DELAY, RETRYABLE, meaning
from hub.bridge.profile import BridgeProfile, load_profile
from hub.bridge.tag_index import TagIndex

__all__ = [
    "HISTORY_WINDOW_MS",
    "TAG_CHARS",
    "BridgeClient",
    "BridgeError",
    "BridgeNotSupported",
    "BridgeProtocolError",
    "BridgeRejected",
    "BridgeServerError",
    "BridgeTimeout",
    "BridgeUnavailable",
    "closed_since",
    "magic_number",
]

log = logging.getLogger("mt4hub.bridge")

EXTRA_READS = 2  # bridge reads for REST clients at once (the pool holds 8 connections)
FILL_READS = 3  # reads of /positions to complete a fill answer that holds only a ticket
FILL_READ_GAP = 0.2
HISTORY_WINDOW_MS = 86_400_000
_LOGGED_MAX = 256
MAGIC_MAX = 10_000  # tickets whose magic number is remembered (BridgeClient._magic)
TAG_CHARS = 11  # an order tag's length (hub.trading.reconcile.order_tag)


def magic_number(tag: str) -> int:
    """The magic number an order tag becomes (a positive 31-bit integer, as MT4 keeps)."""
    return int(hashlib.sha1(tag.encode()).hexdigest()[:7], 16) + 1


def closed_since(position: Position | None) -> int:
    """Where a position's close can be in the history: from its open time, else the day."""
    if position is not None and position.open_time:
        return position.open_time
    return now_ms() - HISTORY_WINDOW_MS


def _magic_key(raw: Any) -> int | None:
    """A history row's magic number as the tag index keeps it (None: none to keep)."""
    try:
        return None if raw is None else int(float(raw)) or None
    except (TypeError, ValueError, OverflowError):
        return None


def _comment_key(raw: Any) -> str | None:
    """A history row's comment as the tag index keeps it: where a tag would be."""
    return raw[:TAG_CHARS] if isinstance(raw, str) and len(raw) >= TAG_CHARS else None


class BridgeClient:
    """Talks to one bridge at ``base_url`` (``http://host:port``) in ``profile``'s dialect,
    with ``symbols`` naming the hub's symbols at the bridge (``XAUUSD`` -> ``XAUUSD.m``)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 2.0,
        trade_timeout: float = 10.0,
        profile: BridgeProfile | None = None,
        symbols: dict[str, str] | None = None,
        timezone: str | None = None,
        name: str = "",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = name  # the agent's id, in logs
        self.timeout = timeout
        self.trade_timeout = trade_timeout
        self.profile = profile or load_profile()
        self.dialect = Dialect(self.profile, symbols, timezone)
        self._session: aiohttp.ClientSession | None = None
        # Reads for REST clients: shared for a while, and at most two at once, so that they
        # never take the pool's connections from polling and trading.
        self._recent: dict[int | None, tuple[float, asyncio.Future[list[ClosedTrade]]]] = {}
        self._extra_reads = asyncio.Semaphore(EXTRA_READS)
        self.skipped = {"positions": RowSkips(), "history": RowSkips()}  # the last reads
        # ticket -> magic number, as the bridge reported; the newest MAGIC_MAX kept
        self._magic: dict[int, int] = {}
        self._tags = TagIndex(HISTORY_WINDOW_MS)  # which order tags the history holds
        self._held: dict[int, Position] = {}  # the last positions read, by ticket
        self._logged: set[str] = set()
        self.last_answer: tuple[str, int, bytes] | None = None  # (call, status, body): probe

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=8, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, raise_for_status=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def supports(self, operation: str) -> bool:
        return self.profile.operation(operation) is not None

    async def _call(self, name: str, values: dict[str, Any], *, limit: float | None = None) -> Any:
        """Operation ``name`` with the hub's ``values``: its answer's payload."""
        if not self.supports(name):
            raise BridgeNotSupported(
                f"the bridge profile {self.profile.name!r} has no {name} operation"
            )
        req = self.dialect.request(name, values)
        url = self.base_url + req.path
        method, path = req.method, req.path
        limit = limit if limit is not None else self.timeout
        headers = {"Content-Type": "application/json"} if req.body is not None else None
        try:
            async with asyncio.timeout(limit):
                async with self._http().request(
                    method, url, data=req.body, params=req.query or None, headers=headers
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
        self.last_answer = (f"{method} {path}", status, raw)
        return self.dialect.payload(name, status, raw, f"{method} {path}")

    async def _write(self, name: str, values: dict[str, Any]) -> Any:
        """A trade call; refused with 136 or 146 (nothing executed), sent once more."""
        try:
            return await self._call(name, values, limit=self.trade_timeout)
        except (BridgeRejected, BridgeServerError) as exc:
            if exc.mt4_code not in RETRYABLE:
                raise
            log.warning("bridge_retry agent=%s op=%s mt4_error=%s (%s) delay_s=%s", self.name,
                        name, exc.mt4_code, meaning(exc.mt4_code or 0), RETRY_DELAY)  # fmt: skip
            await asyncio.sleep(RETRY_DELAY)
            return await self._call(name, values, limit=self.trade_timeout)

    def _log_skips(self, name: str, skips: RowSkips) -> None:
        for error in skips.errors:
            if error not in self._logged and len(self._logged) < _LOGGED_MAX:
                self._logged.add(error)
                log.warning("bridge_row_skipped agent=%s op=%s error=%r", self.name, name, error)

    def status(self) -> dict[str, Any]:
        """For ``/api/status`` (open to anyone): the profile and how many rows the last reads
        left out; what was wrong with a bad row is logged, not shown here."""
        pos, hist = self.skipped["positions"], self.skipped["history"]
        return {
            "profile": self.profile.name,
            "skipped": {
                "pending_orders": pos.pending,
                "balance_rows": hist.balance + pos.balance,
                "bad_rows": pos.bad + hist.bad,
            },
        }

    # -- reads --------------------------------------------------------------------------

    async def account(self) -> Account:
        return self.dialect.account(await self._call("account", {}))

    async def tick(self, symbol: str) -> Tick:
        return self.dialect.tick(await self._call("tick", {"symbol": symbol}), symbol)

    async def positions(self) -> list[Position]:
        skips = RowSkips()
        rows = self.dialect.position_rows(await self._call("positions", {}), skips)
        self.skipped["positions"] = skips
        self._log_skips("positions", skips)
        self._held = {p.ticket: p for p, _ in rows}
        self._remember((p.ticket, magic) for p, magic in rows if magic)
        return [p for p, _ in rows]

    async def history(self, since_ms: int | None = None) -> list[ClosedTrade]:
        if not self.supports("history"):
            return []
        skips = RowSkips()
        payload = await self._call("history", {"since": since_ms})
        rows = self.dialect.history(payload, skips)
        self.skipped["history"] = skips
        self._log_skips("history", skips)
        self._remember((t.ticket, magic) for t, magic in rows if magic)
        return [t for t, _ in rows]

    async def tagged_history(self, tag: str) -> list[ClosedTrade]:
        """The history rows of the last day (``HISTORY_WINDOW_MS``) of the order tagged
        ``tag``: its magic number, or a comment that starts with the tag as far as the
        broker kept it. The tag index (:mod:`hub.bridge.tag_index`) reads only what closed
        since the last search; the whole day is read, and only the matching rows decoded,
        when the index says the tag may be there."""
        key: Callable[[Any], Hashable | None] = _comment_key
        field = "comment"
        want: Hashable = tag[:TAG_CHARS]
        if self.profile.tag_in_magic:
            key, field, want = _magic_key, "magic", magic_number(tag)
        now = now_ms()
        start = now - HISTORY_WINDOW_MS
        since = self._tags.since(now)
        payload = await self._call("history", {"since": since})
        marks = self.dialect.tag_marks(payload, field)
        self._tags.add(since, ((t, c, k) for t, c, raw in marks if (k := key(raw)) is not None))
        self._tags.expire(now)
        if not self._tags.may_hold(want):
            return []
        if since > start:
            payload = await self._call("history", {"since": start})
        if self.profile.tag_in_magic:
            return self.dialect.tagged_history(payload, field, lambda raw: key(raw) == want)
        return self.dialect.tagged_history(
            payload, field, lambda raw: isinstance(raw, str) and raw.startswith(tag)
        )

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

    # -- order tags ---------------------------------------------------------------------

    def _remember(self, magics: Iterable[tuple[int, int]]) -> None:
        """Tickets' magic numbers; past MAGIC_MAX the oldest are forgotten (a ticket that
        old is in neither the positions nor the reconciliation window's history)."""
        for ticket, magic in magics:
            self._magic.pop(ticket, None)
            self._magic[ticket] = magic
        while len(self._magic) > MAGIC_MAX:
            del self._magic[next(iter(self._magic))]

    def order_comment(self, tag: str, comment: str) -> str:
        """The comment sent with an order: the tag first (unless it goes into the magic
        number), cut to the profile's ``comment_max``."""
        text = comment if self.profile.tag_in_magic else f"{tag} {comment}"
        return text.strip()[: self.profile.comment_max]

    def has_tag(self, row: Position | ClosedTrade, tag: str) -> bool:
        """Whether the bridge's ``row`` is the order tagged ``tag`` (its magic number, or a
        comment that starts with the tag as far as the broker kept it)."""
        if self.profile.tag_in_magic:
            return self._magic.get(row.ticket) == magic_number(tag)
        return bool(row.comment) and row.comment.startswith(tag)

    # -- writes -------------------------------------------------------------------------

    async def trade(self, order: TradeOrder, tag: str | None = None) -> Position:
        values: dict[str, Any] = {
            "symbol": order.symbol, "action": order.action, "lots": order.lots,
            "sl": order.sl, "tp": order.tp, "comment": order.comment,
        }  # fmt: skip
        if tag is not None and self.profile.tag_in_magic:
            values["magic"] = magic_number(tag)
        answer = await self._write("open", values)
        position, ticket, magic = self.dialect.filled("open", answer)
        if position is not None:
            if magic or "magic" in values:
                self._remember([(position.ticket, magic or values["magic"])])
            return position
        if "magic" in values and ticket is not None:
            self._remember([(ticket, values["magic"])])
        return await self._complete_fill(ticket, tag, answer)

    async def _complete_fill(self, ticket: int | None, tag: str | None, answer: Any) -> Position:
        """A fill answer that holds only a ticket (or only ``success``): the position as
        ``/positions`` shows it."""
        where = self.dialect._where("open")
        if ticket is None and tag is None:
            raise BridgeProtocolError(f"{where}: bad answer: no ticket in {answer!r:.200}")
        for attempt in range(FILL_READS):
            for p in await self.positions():
                if p.ticket == ticket or (ticket is None and tag and self.has_tag(p, tag)):
                    log.info("fill_completed agent=%s ticket=%s", self.name, p.ticket)
                    return p
            if attempt + 1 < FILL_READS:
                await asyncio.sleep(FILL_READ_GAP)
        raise BridgeProtocolError(
            f"{where}: the bridge answered {answer!r:.200} but its positions do not show "
            f"ticket {ticket}: check the account"
        )

    async def close_position(self, order: CloseOrder) -> ClosedTrade:
        name = "close"
        if order.lots is not None and self.supports("partial_close"):
            name = "partial_close"
        elif order.lots is not None and "lots" not in self._op_values("close"):
            raise BridgeNotSupported(
                f"the bridge profile {self.profile.name!r} cannot close part of a position"
            )
        held = self._held.get(order.ticket)
        answer = await self._write(name, {"ticket": order.ticket, "lots": order.lots})
        closed, _ = self.dialect.closed(name, answer)
        if closed is not None:
            return closed
        return await self._complete_close(order, held)

    def _op_values(self, name: str) -> set[str]:
        op = self.profile.operation(name)
        return set() if op is None else set(op.body) | {v.strip("{}") for v in op.query.values()}

    async def _complete_close(self, order: CloseOrder, held: Position | None) -> ClosedTrade:
        """A close answer that says only "done": the newest history row of the ticket, else
        what the position said (close price unknown: the open price, profit 0)."""
        try:
            rows = [t for t in await self.history(closed_since(held))
                    if t.ticket == order.ticket]  # fmt: skip
        except BridgeError as exc:
            log.warning("close_history_unread agent=%s ticket=%s error=%r",
                        self.name, order.ticket, str(exc))  # fmt: skip
            rows = []
        if rows:
            return max(rows, key=lambda t: t.close_time)
        if held is None:
            raise BridgeProtocolError(
                f"{self.dialect._where('close')}: the close of {order.ticket} was confirmed, "
                "but neither the answer nor the history says at what price"
            )
        fields = {f: getattr(held, f) for f in ClosedTrade.__struct_fields__
                  if f in Position.__struct_fields__}  # fmt: skip
        return ClosedTrade(**{**fields, "lots": order.lots or held.lots,
                              "close_price": held.open_price, "profit": 0.0,
                              "close_time": now_ms()})  # fmt: skip

    async def modify(self, order: ModifyOrder) -> Position:
        values = {"ticket": order.ticket, "sl": order.sl, "tp": order.tp}
        answer = await self._write("modify", values)
        position, _, _ = self.dialect.filled("modify", answer)
        if position is not None:
            return position
        for p in await self.positions():
            if p.ticket == order.ticket:
                return p
        raise BridgeProtocolError(
            f"{self.dialect._where('modify')}: modified {order.ticket} but its positions do "
            "not show it"
        )
