"""``client_order_id`` keys are per agent and remembered across restarts."""

from __future__ import annotations

import asyncio
import functools
import tracemalloc
from pathlib import Path

import msgspec
import pytest

from channels.clock import now_ms
from hub.errors import HubError
from hub.trading.idempotency import IdempotencyCache, fingerprint
from hub.trading.models import TradeRequest
from tests.hub.trading.kit import TradingKit, trading_kit


def buy(sl: float, coid: str, comment: str = "") -> TradeRequest:
    return TradeRequest(
        symbol="XAUUSD", action="buy", lots=0.01, sl=sl, client_order_id=coid, comment=comment
    )


async def pin(kit: TradingKit, *agents: str) -> None:
    for agent_id in agents:
        kit.market(agent_id).pin("XAUUSD", 2650.0, 2650.3)
        await kit.poll(agent_id)


async def test_the_same_id_on_two_agents_is_two_orders() -> None:
    async with trading_kit() as kit:
        await pin(kit, "agent_1", "agent_3")
        one = await kit.trading.open("agent_1", buy(2648.5, "sig-9:agent_2"), by="t")
        three = await kit.trading.open("agent_3", buy(2648.5, "sig-9:agent_2"), by="t")
        assert kit.market("agent_1").orders_filled == 1
        assert kit.market("agent_3").orders_filled == 1
        assert one["agent_id"] == "agent_1" and three["agent_id"] == "agent_3"


async def test_after_a_restart_a_repeat_gets_the_first_result_and_a_change_gets_409() -> None:
    async with trading_kit() as kit:
        await pin(kit, "agent_1")
        first = await kit.trading.open("agent_1", buy(2648.5, "ml-7", "a"), by="t")
        async with trading_kit(data_dir=kit.data_dir, markets=kit.markets()) as again:
            repeat = await again.trading.open("agent_1", buy(2648.5, "ml-7", "a"), by="t")
            assert repeat == first
            with pytest.raises(HubError) as dup:
                await again.trading.open("agent_1", buy(2648.5, "ml-7", "b"), by="t")
            assert dup.value.code == "duplicate"
            assert kit.market("agent_1").orders_filled == 1


async def test_without_the_outcome_log_the_bridge_order_decides_a_repeat() -> None:
    async with trading_kit() as kit:
        await pin(kit, "agent_1")
        await kit.trading.open("agent_1", buy(2648.5, "ml-8", "a"), by="t")
        (kit.data_dir / "orders.log").unlink()  # a crash before the outcome was written
        async with trading_kit(data_dir=kit.data_dir, markets=kit.markets()) as again:
            with pytest.raises(HubError) as dup:
                await again.trading.open("agent_1", buy(2648.5, "ml-8", "other"), by="t")
            assert dup.value.code == "duplicate"
            same = await again.trading.open("agent_1", buy(2648.5, "ml-8", "a"), by="t")
            assert same["ticket"] == kit.market("agent_1").positions()[0].ticket
            assert kit.market("agent_1").orders_filled == 1


async def test_an_outcome_log_of_full_payloads_still_matches_after_the_upgrade(
    tmp_path: Path,
) -> None:
    """Logs written before outcomes kept a payload digest hold the payload itself."""
    payload = {"agent": "agent_1", "client_order_id": "old-1", "lots": 0.01}
    line = msgspec.json.encode(
        {"key": "agent_1\x1fold-1", "fp": fingerprint(payload).decode(), "at": now_ms(),
         "result": {"ticket": 7}}
    )  # fmt: skip
    (tmp_path / "orders.log").write_bytes(line + b"\n")
    cache = IdempotencyCache(path=tmp_path / "orders.log")

    async def never() -> None:
        raise AssertionError("a repeat ran the command again")

    assert await cache.run(("agent_1", "old-1"), payload, never) == ({"ticket": 7}, True)
    with pytest.raises(HubError) as dup:
        await cache.run(("agent_1", "old-1"), {**payload, "lots": 0.02}, never)
    assert dup.value.code == "duplicate"


async def test_outcomes_are_forgotten_past_capacity_and_after_their_ttl(tmp_path: Path) -> None:
    cache = IdempotencyCache(3, path=tmp_path / "orders.log", ttl_ms=60_000)
    for n in range(10):
        await cache.run(("a", f"id-{n}"), {"n": n}, functools.partial(_value, n))
    assert len(cache) == 3
    assert len((tmp_path / "orders.log").read_bytes().splitlines()) <= 6  # compacted
    again = IdempotencyCache(3, path=tmp_path / "orders.log", ttl_ms=60_000)  # a restart
    assert await again.run(("a", "id-8"), {"n": 8}, lambda: _value(-1)) == (8, True)
    assert await cache.run(("a", "id-9"), {"n": 9}, lambda: _value(-1)) == (9, True)
    assert await cache.run(("a", "id-0"), {"n": 0}, lambda: _value(-1)) == (-1, False)
    cache.ttl_ms = 20  # a day, made short
    await asyncio.sleep(0.05)
    await cache.run(("a", "new"), {}, lambda: _value(1))
    assert len(cache) == 1  # only the newest, decided now


async def _value(n: int) -> int:
    return n


async def test_a_torn_last_line_does_not_swallow_the_next_outcome(tmp_path: Path) -> None:
    """A crash while writing leaves a line without its end; the outcome appended after the
    restart must still be read back after the next one (not glued to the torn line)."""
    log = tmp_path / "orders.log"
    cache = IdempotencyCache(path=log)
    await cache.run(("a", "id-1"), {"n": 1}, lambda: _value(1))
    log.write_bytes(log.read_bytes() + b'{"key":"a\\u001fid-2","fp":"')  # torn by a crash
    again = IdempotencyCache(path=log)
    assert await again.run(("a", "id-3"), {"n": 3}, lambda: _value(3)) == (3, False)
    third = IdempotencyCache(path=log)  # the next restart
    assert await third.run(("a", "id-3"), {"n": 3}, lambda: _value(-1)) == (3, True)
    assert await third.run(("a", "id-1"), {"n": 1}, lambda: _value(-1)) == (1, True)


async def test_compacting_the_log_keeps_no_object_per_line(tmp_path: Path) -> None:
    """A 2-hour soak's RSS rose ~1 MB after the first compaction: a tuple per kept line
    (10 000 at once) moved the allocator to a new arena for good. Now one buffer."""
    cache = IdempotencyCache(10_000, path=tmp_path / "orders.log")
    for n in range(2 * 10_000):
        await cache.run(("a", f"id-{n}"), {"n": n}, functools.partial(_value, n))
    tracemalloc.start()
    try:
        await cache.run(("a", "compacts"), {}, functools.partial(_value, 0))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len((tmp_path / "orders.log").read_bytes().splitlines()) == 10_000
    assert peak < 200_000, f"compaction held {peak} bytes at once"
    assert await cache.run(("a", "id-10001"), {"n": 10_001}, lambda: _value(-1)) == (10_001, True)
