"""Never a blind retry: every order carries a tag, and a lost answer is looked up.

The tag (derived from the ``client_order_id``) goes first in the bridge comment, or into
its magic number when the bridge profile sends one (:meth:`BridgeClient.order_comment`). When
the bridge times out, or drops the connection after the order was sent, the bridge's
positions and history are searched for the tag for up to one trade timeout; only when
that cannot decide is the answer ``bridge_timeout`` with ``outcome: unknown``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence

from hub.agents import AgentRuntime
from hub.bridge.client import (
    TAG_CHARS,
    BridgeError,
    BridgeProtocolError,
    BridgeTimeout,
    BridgeUnavailable,
    closed_since,
)
from hub.bridge.models import ClosedTrade, Position, TradeOrder
from hub.errors import HubError

__all__ = ["already_sent", "confirm_close", "order_tag", "send_order"]

log = logging.getLogger("mt4hub.trading")

RETRY_S = 0.2


def order_tag(client_order_id: str) -> str:
    """The short tag put first in the bridge comment (MT4 keeps 31 characters)."""
    return "h" + hashlib.sha1(client_order_id.encode()).hexdigest()[: TAG_CHARS - 1]


async def send_order(agent: AgentRuntime, order: TradeOrder, tag: str, within: float) -> Position:
    """Send ``order``; on a lost answer, reconcile for up to ``within`` seconds."""
    try:
        return await agent.client.trade(order, tag=tag)
    except (BridgeTimeout, BridgeUnavailable) as exc:
        if isinstance(exc, BridgeUnavailable) and not exc.sent:
            raise HubError("agent_offline", f"{agent.id} bridge unreachable: {exc}") from None
        found, checked = await _reconcile(agent, tag, within)
        if found is not None:
            log.warning("order_reconciled agent=%s tag=%s ticket=%s", agent.id, tag, found.ticket)
            return found
        what = (
            "the bridge's positions and history do not show it"
            if checked
            else "the bridge could not be read to check"
        )
        raise HubError(
            "bridge_timeout",
            f"{agent.id}: {exc}; {what}, so the outcome is unknown: check the account "
            f"before resending (order tag {tag})",
            {"tag": tag, "outcome": "unknown", "checked": checked},
        ) from None
    except BridgeError as exc:
        message = f"{agent.id} bridge refused the order: {exc}"
        raise HubError(exc.code, message, exc.details) from None


async def already_sent(agent: AgentRuntime, tag: str) -> Position | None:
    """The order with ``tag`` if the bridge already has it (sent before a restart)."""
    try:
        return await _find_tagged(agent, tag)
    except BridgeError as exc:
        raise HubError(exc.code, f"{agent.id}: cannot check earlier orders: {exc}") from None


async def confirm_close(
    agent: AgentRuntime,
    position: Position,
    lots: float,
    within: float,
    *,
    earlier: Sequence[ClosedTrade] | None = None,
) -> ClosedTrade | None:
    """After a lost close answer: what the bridge's own state shows, for up to ``within`` s.

    Done only when ``/positions`` shows it — the ticket gone, or its lots reduced by
    ``lots`` — and then with the newest history row for the ticket when there is one (else
    what the position said; close price and profit unknown: 0). None: not shown (the
    position is still there whole, or the bridge cannot be read): the outcome is unknown.

    While a ``/positions`` row cannot be read, the ticket missing from the readable rows
    shows nothing (it may be that row): only a history row of that ticket and lots that is
    not among ``earlier`` (the ticket's rows read before the close was sent; None: not
    read, so no row can tell an earlier partial close from this one) shows the close."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            held = {p.ticket: p for p in await agent.client.positions()}
            now = held.get(position.ticket)
            if now is None:  # gone, unless a row could not be read: it may be that one
                shown = not agent.client.skipped["positions"].bad
            else:
                shown = abs(position.lots - lots - now.lots) < 1e-9
            if shown or (now is None and earlier is not None):
                before = {_row_key(t) for t in earlier or ()}
                rows = [
                    t
                    for t in await agent.client.history(since_ms=closed_since(position))
                    if t.ticket == position.ticket
                    and abs(t.lots - lots) < 1e-9
                    and (shown or _row_key(t) not in before)
                ]
                if rows:
                    return max(rows, key=lambda t: t.close_time)
            if shown:
                fields = {f: getattr(position, f) for f in ClosedTrade.__struct_fields__
                          if f in Position.__struct_fields__}  # fmt: skip
                return ClosedTrade(
                    **{**fields, "lots": lots, "close_price": position.open_price, "profit": 0.0}
                )
        except BridgeError as exc:
            log.warning("close_confirm_retry agent=%s ticket=%s error=%r",
                        agent.id, position.ticket, str(exc))  # fmt: skip
        if loop.time() + RETRY_S > deadline:
            return None
        await asyncio.sleep(RETRY_S)


def _row_key(trade: ClosedTrade) -> tuple[int, float, float]:
    return trade.close_time, trade.lots, trade.close_price


async def _reconcile(agent: AgentRuntime, tag: str, within: float) -> tuple[Position | None, bool]:
    """(the order or None, whether the bridge could be read at all)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    attempt = 0
    while True:
        attempt += 1
        try:
            return await _find_tagged(agent, tag), True
        except BridgeError as exc:
            log.warning(
                "reconcile_retry agent=%s tag=%s attempt=%d error=%r",
                agent.id,
                tag,
                attempt,
                str(exc),
            )
        if loop.time() + RETRY_S > deadline:
            return None, False
        await asyncio.sleep(RETRY_S)


async def _find_tagged(agent: AgentRuntime, tag: str) -> Position | None:
    client = agent.client
    for pos in await client.positions():
        if client.has_tag(pos, tag):
            return pos
    unreadable = client.skipped["positions"].bad
    for trade in await client.tagged_history(tag):
        return Position(**{f: getattr(trade, f) for f in Position.__struct_fields__})
    if unreadable:  # the order may be a row that could not be read: "not sent" is a guess
        raise BridgeProtocolError(
            f"{unreadable} row(s) of /positions could not be read "
            f"({client.skipped['positions'].errors[0]}): the order may be one of them"
        )
    return None
