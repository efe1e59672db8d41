"""``mt4hub probe URL``: check a live EA Bridge against a bridge profile.

Read-only by default: it reads the account, one symbol's tick, the positions and the
history, printing per operation what the bridge answered and what the hub made of it, then
every mismatch with the profile (``/account: field free_margin missing (profile:
free_margin)``). With ``--trade`` (a demo account!) it also opens the minimum lot without
stops and closes it again. The exit status is 0 when the hub can work with the bridge: every
read it needs decodes (tolerated mismatches are printed, not fatal).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from channels.clock import now_ms
from hub.bridge.client import BridgeClient, BridgeError
from hub.bridge.models import CloseOrder, TradeOrder
from hub.bridge.profile import BridgeProfile

__all__ = ["probe"]

SHOWN_BYTES = 300


class _Probe:
    def __init__(self, client: BridgeClient, out: TextIO) -> None:
        self.client = client
        self.out = out
        self.failed: list[str] = []

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    async def step(self, what: str, call: Callable[[], Awaitable[Any]], required: bool) -> Any:
        self.client.last_answer = None
        try:
            result = await call()
        except BridgeError as exc:
            self._answered(what)
            mt4 = exc.details["mt4_error"] if exc.details else None
            shown = f", MT4 error {mt4['code']}: {mt4['meaning']}" if mt4 else ""
            self.say(f"  FAILED ({exc.code}{shown}): {exc}")
            if required:
                self.failed.append(f"{what}: {exc}")
            return None
        self._answered(what)
        return result

    def _answered(self, what: str) -> None:
        answer = self.client.last_answer
        if answer is None:
            self.say(f"{what}: no answer")
            return
        call, status, raw = answer
        text = raw[:SHOWN_BYTES].decode("utf-8", "replace")
        more = " …" if len(raw) > SHOWN_BYTES else ""
        self.say(f"{call}: HTTP {status} {text}{more}")


async def probe(
    url: str,
    profile: BridgeProfile,
    *,
    symbol: str,
    trade: bool = False,
    lots: float = 0.01,
    within: float = 5.0,
    timezone: str | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Probe the bridge at ``url`` (each call answered ``within`` seconds); 0 when the hub
    can work with it, else 1."""
    client = BridgeClient(url, timeout=within, trade_timeout=within * 3, profile=profile,
                          timezone=timezone)  # fmt: skip
    notes: list[str] = []
    client.dialect.notes = notes
    p = _Probe(client, out)
    p.say(f"probing {url} with bridge profile {profile.name!r}"
          + (f" ({profile.description})" if profile.description else ""))  # fmt: skip
    try:
        account = await p.step("account", client.account, True)
        if account is not None:
            p.say(f"  ok: balance {account.balance} equity {account.equity} margin "
                  f"{account.margin} free_margin {account.free_margin} profit {account.profit} "
                  f"{account.currency} 1:{account.leverage}")  # fmt: skip
        tick = await p.step("tick", lambda: client.tick(symbol), True)
        if tick is not None:
            p.say(f"  ok: {tick.symbol} bid {tick.bid} ask {tick.ask} time {tick.time}")
        positions = await p.step("positions", client.positions, True)
        if positions is not None:
            skips = client.skipped["positions"]
            p.say(f"  ok: {len(positions)} open, skipped {skips.pending} pending, "
                  f"{skips.bad} unreadable")  # fmt: skip
        if client.supports("history"):
            since = now_ms() - 7 * 86_400_000
            history = await p.step("history", lambda: client.history(since), True)
            if history is not None:
                skips = client.skipped["history"]
                p.say(f"  ok: {len(history)} closed in 7 days, skipped {skips.balance} "
                      f"balance/credit, {skips.bad} unreadable")  # fmt: skip
        else:
            p.say("history: not in the profile: closes by SL/TP are not seen by the hub")
        for name in ("close", "partial_close", "modify"):
            if not client.supports(name):
                p.say(f"{name}: not in the profile: the hub answers not_supported (422)")
        if trade:
            await _trade(p, client, symbol, lots)
        else:
            p.say("open/close/modify: not tried (read-only; --trade opens and closes "
                  "the minimum lot)")  # fmt: skip
        bad_rows = client.skipped["positions"].errors + client.skipped["history"].errors
        mismatches = [*notes, *bad_rows]
        p.say()
        p.say(f"mismatches with the profile: {len(mismatches)}")
        for line in mismatches:
            p.say(f"  {line}")
        if p.failed:
            p.say(f"result: the hub cannot work with this bridge ({len(p.failed)} failed)")
            return 1
        p.say("result: the hub can work with this bridge")
        return 0
    finally:
        await client.close()


async def _trade(p: _Probe, client: BridgeClient, symbol: str, lots: float) -> None:
    order = TradeOrder(symbol=symbol, action="buy", lots=lots, comment="mt4hub probe")
    opened = await p.step("open", lambda: client.trade(order, tag="hprobe"), True)
    if opened is None:
        return
    p.say(f"  ok: ticket {opened.ticket} {opened.action} {opened.lots} {opened.symbol} "
          f"at {opened.open_price}")  # fmt: skip
    if not client.supports("close"):
        p.say(f"  close it in the terminal: ticket {opened.ticket} (no close in the profile)")
        return
    closed = await p.step("close", lambda: client.close_position(CloseOrder(ticket=opened.ticket)),
                          True)  # fmt: skip
    if closed is not None:
        p.say(f"  ok: closed {closed.ticket} at {closed.close_price}, profit {closed.profit}")
