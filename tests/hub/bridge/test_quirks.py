"""What real MT4 bridges answer, through each built-in profile (issue 16's table).

Each test is one row of the table: a simulator speaking the profile's dialect, with one
answer bent the way MQL4 bridges often write it (times in seconds, numbers as strings,
``freeMargin``, a pending order, a deposit row, a fill that holds only a ticket ...).
The client must read it, skip and count what is no open trade, or refuse it with the
bridge's own reason; none of it may take the agent offline.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from hub.agents import AgentRuntime
from hub.bridge.client import BridgeClient, BridgeNotSupported, BridgeRejected
from hub.bridge.models import CloseOrder, ModifyOrder, TradeOrder
from hub.bridge.profile import BridgeProfile, builtin_names, load_profile
from hub.bridge.sim import SimMarket
from hub.config import AgentConfig, AgentRisk
from hub.errors import HubError
from hub.trading.reconcile import already_sent, confirm_close, order_tag
from tests.hub.bridge.quirky import SPECS, QuirkyBridge, rows, serve
from tests.timing import units


@pytest.fixture(params=builtin_names())
def profile(request: pytest.FixtureRequest) -> BridgeProfile:
    return load_profile(request.param)


@pytest.fixture
async def bridge(profile: BridgeProfile) -> AsyncIterator[QuirkyBridge]:
    b = QuirkyBridge(profile, SimMarket(SPECS, 1000.0, seed=3))
    runner = await serve(b)
    try:
        yield b
    finally:
        await runner.cleanup()


@pytest.fixture
async def client(bridge: QuirkyBridge) -> AsyncIterator[BridgeClient]:
    c = BridgeClient(bridge.url, timeout=units(5), trade_timeout=units(5), profile=bridge.profile)
    try:
        yield c
    finally:
        await c.close()


# -- the table ----------------------------------------------------------------------------


async def test_no_close_or_modify_endpoints_is_not_supported_and_nothing_is_sent(
    profile: BridgeProfile,
) -> None:
    only_five = msgspec.structs.replace(profile, close=None, partial_close=None, modify=None)
    b = QuirkyBridge(only_five, SimMarket(SPECS, 1000.0, seed=3))
    runner = await serve(b)
    c = BridgeClient(b.url, timeout=units(5), profile=only_five)
    try:
        ticket = b.model.trade("XAUUSD", "buy", 0.01).ticket
        for call in (
            c.close_position(CloseOrder(ticket=ticket)),
            c.close_position(CloseOrder(ticket=ticket, lots=0.01)),
            c.modify(ModifyOrder(ticket=ticket, sl=2000.0)),
        ):
            with pytest.raises(BridgeNotSupported) as info:
                await call
            assert info.value.code == "not_supported"
        assert b.requests == []
        assert [p.ticket for p in b.model.positions()] == [ticket]
    finally:
        await c.close()
        await runner.cleanup()


async def test_times_in_epoch_seconds_are_seconds(
    bridge: QuirkyBridge, client: BridgeClient
) -> None:
    ticket = bridge.model.trade("XAUUSD", "buy", 0.01).ticket
    closed = bridge.model.close(ticket)
    seconds = closed.close_time // 1000

    def in_seconds(row: dict[str, Any]) -> None:
        row[bridge.key("history", "close_time")] = seconds
        row[bridge.key("history", "open_time")] = seconds

    bridge.bend["history"] = rows(in_seconds)
    [trade] = await client.history()
    assert trade.close_time == trade.open_time == seconds * 1000


@pytest.mark.parametrize(
    ("written", "ms"),
    [("2024.01.02 10:00:00", 1_704_189_600_000), (1_704_189_600.5, 1_704_189_600_500)],
)
async def test_text_and_float_times_are_read(
    bridge: QuirkyBridge, client: BridgeClient, written: Any, ms: int
) -> None:
    def bent(tick: dict[str, Any]) -> dict[str, Any]:
        tick[bridge.key("tick", "time")] = written
        return tick

    bridge.bend["tick"] = bent
    assert (await client.tick("XAUUSD")).time == ms


async def test_text_times_are_in_the_server_time_zone(bridge: QuirkyBridge) -> None:
    athens = BridgeClient(bridge.url, profile=bridge.profile, timezone="Europe/Athens")
    try:
        bridge.bend["tick"] = lambda t: {**t, bridge.key("tick", "time"): "2024.01.02 12:00:00"}
        assert (await athens.tick("XAUUSD")).time == 1_704_189_600_000  # 10:00 UTC
    finally:
        await athens.close()


async def test_numbers_as_strings_and_whole_floats(
    bridge: QuirkyBridge, client: BridgeClient
) -> None:
    ticket = bridge.model.trade("XAUUSD", "buy", 0.01, sl=2600.0).ticket

    def strings(account: dict[str, Any]) -> dict[str, Any]:
        out = {k: str(v) if isinstance(v, float) else v for k, v in account.items()}
        out[bridge.key("account", "leverage")] = 100.0
        return out

    def position(row: dict[str, Any]) -> None:
        row[bridge.key("positions", "ticket")] = float(ticket)
        for hub in ("lots", "open_price", "sl"):
            row[bridge.key("positions", hub)] = str(row[bridge.key("positions", hub)])

    bridge.bend["account"] = strings
    bridge.bend["positions"] = rows(position)
    account = await client.account()
    assert account.balance == 1000.0 and account.leverage == 100
    [pos] = await client.positions()
    assert (pos.ticket, pos.lots, pos.sl) == (ticket, 0.01, 2600.0)


@pytest.mark.parametrize("variant", ["FreeMargin", "freeMargin", "free_margin", "none"])
async def test_free_margin_under_another_name_or_no_margin_fields(
    bridge: QuirkyBridge, client: BridgeClient, variant: str
) -> None:
    bridge.model.trade("XAUUSD", "buy", 0.01)

    def bent(account: dict[str, Any]) -> dict[str, Any]:
        free = account.pop(bridge.key("account", "free_margin"))
        if variant == "none":
            account.pop(bridge.key("account", "margin"))
        else:
            account[variant] = free
        return account

    truth = bridge.model.account()
    bridge.bend["account"] = bent
    account = await client.account()
    if variant == "none":  # no margin known: all of the equity is free
        assert account.margin == 0.0 and account.free_margin == account.equity
    else:
        assert account.free_margin == pytest.approx(truth.free_margin, abs=1.0)


@pytest.mark.parametrize("answered", ["XAUUSD.m", None])
async def test_a_tick_with_a_broker_suffix_or_without_symbol(
    bridge: QuirkyBridge, client: BridgeClient, answered: str | None
) -> None:
    def bent(tick: dict[str, Any]) -> dict[str, Any]:
        tick.pop(bridge.key("tick", "symbol"))
        if answered is not None:
            tick[bridge.key("tick", "symbol")] = answered
        return tick

    bridge.bend["tick"] = bent
    tick = await client.tick("XAUUSD")
    assert tick.symbol == "XAUUSD" and 0 < tick.bid < tick.ask


async def test_configured_broker_names_map_both_ways(profile: BridgeProfile) -> None:
    names = {"XAUUSD": "XAUUSD.m"}
    b = QuirkyBridge(profile, SimMarket(SPECS, 1000.0, seed=3))
    runner = await serve(b, names=names)
    c = BridgeClient(b.url, profile=profile, symbols=names)
    try:
        assert (await c.tick("XAUUSD")).symbol == "XAUUSD"
        pos = await c.trade(TradeOrder(symbol="XAUUSD", action="buy", lots=0.01))
        assert pos.symbol == "XAUUSD"
        assert [p.symbol for p in await c.positions()] == ["XAUUSD"]
        assert any(path.endswith("XAUUSD.m/tick") or path.endswith("XAUUSD.m")
                   for _, path, _ in b.requests)  # fmt: skip
    finally:
        await c.close()
        await runner.cleanup()


@pytest.mark.parametrize("side", [0, "BUY", "OP_BUY", "ORDER_TYPE_BUY", "buy"])
async def test_a_pending_order_is_skipped_and_counted_and_sides_are_read(
    bridge: QuirkyBridge, client: BridgeClient, side: Any
) -> None:
    ticket = bridge.model.trade("XAUUSD", "buy", 0.01).ticket

    def bent(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
        [row] = payload
        row[bridge.key("positions", "action")] = side
        pending = {**row, bridge.key("positions", "ticket"): ticket + 100}
        pending[bridge.key("positions", "action")] = "buylimit"
        return [row, pending]

    bridge.bend["positions"] = bent
    [pos] = await client.positions()
    assert (pos.ticket, pos.action) == (ticket, "buy")
    assert client.status()["skipped"]["pending_orders"] == 1


async def test_a_deposit_row_in_history_is_skipped_and_counted(
    bridge: QuirkyBridge, client: BridgeClient
) -> None:
    ticket = bridge.model.trade("XAUUSD", "buy", 0.01).ticket
    bridge.model.close(ticket)

    def bent(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
        deposit = {bridge.key("history", "ticket"): 1, bridge.key("history", "action"): "balance",
                   bridge.key("history", "lots"): 0, bridge.key("history", "profit"): 100.0,
                   bridge.key("history", "symbol"): "", "comment": "Deposit"}  # fmt: skip
        return [deposit, *payload]

    bridge.bend["history"] = bent
    assert [t.ticket for t in await client.history()] == [ticket]
    assert client.status()["skipped"]["balance_rows"] == 1


async def test_one_bad_row_is_skipped_never_the_whole_list(
    bridge: QuirkyBridge, client: BridgeClient
) -> None:
    good = bridge.model.trade("XAUUSD", "buy", 0.01).ticket
    bridge.model.trade("XAUUSD", "sell", 0.01)

    def bent(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
        payload[1][bridge.key("positions", "lots")] = "lots"
        return payload

    bridge.bend["positions"] = bent
    assert [p.ticket for p in await client.positions()] == [good]
    assert client.status()["skipped"]["bad_rows"] == 1
    [error] = client.skipped["positions"].errors  # logged as bridge_row_skipped
    assert error.endswith("row 1: field lots: 'lots' is not a number"), error


async def test_stop_loss_and_take_profit_under_the_original_design_names(
    bridge: QuirkyBridge, client: BridgeClient
) -> None:
    bridge.model.trade("XAUUSD", "buy", 0.01, sl=2600.0, tp=2700.0)

    def bent(row: dict[str, Any]) -> None:
        row["stop_loss"] = row.pop(bridge.key("positions", "sl"))
        row["take_profit"] = row.pop(bridge.key("positions", "tp"))

    bridge.bend["positions"] = rows(bent)
    [pos] = await client.positions()
    assert (pos.sl, pos.tp) == (2600.0, 2700.0)


async def test_a_fill_answer_holding_only_a_ticket_is_completed_from_positions(
    bridge: QuirkyBridge, client: BridgeClient
) -> None:
    def bent(position: dict[str, Any]) -> dict[str, Any]:
        ticket = position[bridge.key("open", "ticket")]
        return (
            {"success": True, "ticket": ticket}
            if bridge.profile.envelope.data is None
            else {"ticket": ticket}
        )

    bridge.bend["open"] = bent
    pos = await client.trade(TradeOrder(symbol="XAUUSD", action="buy", lots=0.01, sl=2600.0))
    [held] = bridge.model.positions()
    assert (pos.ticket, pos.symbol, pos.open_price, pos.sl) == (
        held.ticket,
        held.symbol,
        held.open_price,
        2600.0,
    )


@pytest.mark.parametrize(
    "answer",
    [
        {"success": False, "error": "invalid stops", "code": 130},
        {"success": False, "error": {"message": "invalid stops", "code": "130"}},
    ],
)
async def test_success_false_with_an_mt4_code_is_the_bridges_reason(
    bridge: QuirkyBridge, client: BridgeClient, answer: dict[str, Any]
) -> None:
    bridge.replace["open"] = answer
    with pytest.raises(BridgeRejected) as info:
        await client.trade(TradeOrder(symbol="XAUUSD", action="buy", lots=0.01, sl=2600.0))
    assert str(info.value) == "invalid stops"
    assert info.value.code == "bridge_error"
    assert info.value.details == {"mt4_error": {"code": 130, "meaning": "invalid stops"}}


async def test_a_modify_without_tp_sends_no_tp(bridge: QuirkyBridge, client: BridgeClient) -> None:
    ticket = bridge.model.trade("XAUUSD", "buy", 0.01, sl=2600.0, tp=2700.0).ticket
    if bridge.profile.modify is None:
        with pytest.raises(BridgeNotSupported):
            await client.modify(ModifyOrder(ticket=ticket, sl=2610.0))
        assert bridge.requests == []
        return
    updated = await client.modify(ModifyOrder(ticket=ticket, sl=2610.0))
    assert (updated.sl, updated.tp) == (2610.0, 2700.0)
    [(_, _, raw)] = bridge.requests
    body = json.loads(raw)
    assert bridge.body_key("modify", "tp") not in body and None not in body.values()
    assert body[bridge.body_key("modify", "sl")] == 2610.0


async def test_the_order_tag_survives_a_comment_cut_to_16_characters(
    profile: BridgeProfile,
) -> None:
    b = QuirkyBridge(profile, SimMarket(SPECS, 1000.0, seed=3))
    runner = await serve(b, comment_max=16)
    c = BridgeClient(b.url, profile=profile)
    config = AgentConfig(
        name="A", strategy="s", bridge=b.url, symbols=["XAUUSD"],
        risk=AgentRisk(max_risk_per_trade=0.01, max_daily_loss=0.05, max_positions=1),
    )  # fmt: skip
    agent = AgentRuntime("agent_1", config, c)
    try:
        tag = order_tag("ml-signal-000042")
        comment = c.order_comment(tag, "a comment longer than twenty characters")
        sent = await c.trade(TradeOrder(symbol="XAUUSD", action="buy", lots=0.01,
                                        comment=comment), tag=tag)  # fmt: skip
        assert len(b.model.positions()[0].comment) <= 16
        found = await already_sent(agent, tag)  # as after a lost answer or a restart
        assert found is not None and found.ticket == sent.ticket
        assert await already_sent(agent, order_tag("another-order")) is None
    finally:
        await c.close()
        await runner.cleanup()


# -- an unreadable /positions row decides nothing -------------------------------------------


def _agent(client: BridgeClient) -> AgentRuntime:
    config = AgentConfig(
        name="A", strategy="s", bridge=client.base_url, symbols=["XAUUSD"],
        risk=AgentRisk(max_risk_per_trade=0.01, max_daily_loss=0.05, max_positions=1),
    )  # fmt: skip
    return AgentRuntime("agent_1", config, client)


def _lots_unreadable(bridge: QuirkyBridge) -> None:
    bridge.bend["positions"] = rows(lambda row: row.update({bridge.key("positions", "lots"): "?"}))


async def test_an_order_whose_row_is_unreadable_is_never_taken_for_unsent(
    bridge: QuirkyBridge, client: BridgeClient
) -> None:
    """A repeat, or a lost trade answer, looks for the order's tag at the bridge. Not found
    among the readable rows while a row could not be read, the order may be that row: the
    answer is "cannot tell" (a retry would be a second order), never "not sent"."""
    agent, tag = _agent(client), order_tag("coid-1")
    comment = client.order_comment(tag, "")
    await client.trade(TradeOrder(symbol="XAUUSD", action="buy", lots=0.01, comment=comment),
                       tag=tag)  # fmt: skip
    _lots_unreadable(bridge)
    with pytest.raises(HubError) as info:
        await already_sent(agent, tag)
    assert info.value.code == "bridge_error"
    assert "could not be read" in info.value.message, info.value.message


async def test_a_close_is_not_confirmed_by_a_row_that_could_not_be_read(
    bridge: QuirkyBridge, client: BridgeClient
) -> None:
    """After a lost close answer, the ticket missing from the readable rows is no proof the
    position closed when a row could not be read: the outcome stays unknown (None) until a
    whole answer, or a history row of that ticket and lots that was not there before the
    close was sent (``earlier``: an earlier partial close of the same lots is no proof)."""
    agent = _agent(client)
    ticket = bridge.model.trade("XAUUSD", "buy", 0.02).ticket
    bridge.model.close(ticket, 0.01)  # an earlier partial close, in the history
    [position] = await client.positions()
    earlier = [t for t in await client.history() if t.ticket == ticket]
    _lots_unreadable(bridge)
    within = units(0.5)
    assert await confirm_close(agent, position, 0.01, within, earlier=earlier) is None
    assert await confirm_close(agent, position, 0.01, within) is None  # none read before
    bridge.model.close(ticket, 0.01)
    closed = await confirm_close(agent, position, 0.01, within, earlier=earlier)
    if client.supports("history"):  # a new history row shows the close though /positions can't
        assert closed is not None and closed.ticket == ticket
    else:
        assert closed is None
