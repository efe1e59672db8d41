"""The Redis broker beyond the shared contract: several instances, patterns, outages, restarts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
import websockets

from channels.broker import Publication, create_broker
from channels.delivery import Outbox
from channels.feed import Feed, SyncResult
from channels.node import Node
from channels.redis import RedisBroker, RedisUnavailable
from channels.session import SessionLimits
from tests.channels.conftest import build_app, dumps, recv, serve_app
from tests.rediskit import RedisServer, redis_prefix
from tests.timing import eventually, units

BrokerFactory = Callable[..., Awaitable[RedisBroker]]


@pytest.fixture
async def make_broker(redis_url: str) -> AsyncIterator[BrokerFactory]:
    """Connected brokers; by default all of one test share one Redis and one prefix."""
    made: list[RedisBroker] = []
    prefix = redis_prefix()

    async def factory(url: str | None = None, **options: Any) -> RedisBroker:
        options.setdefault("prefix", prefix)
        broker = RedisBroker(url or redis_url, **options)
        await broker.connect()
        made.append(broker)
        return broker

    yield factory
    for broker in made:
        await broker.close()


class Seen:
    """A handler recording what it was handed."""

    def __init__(self) -> None:
        self.pubs: list[Publication] = []

    def __call__(self, pub: Publication) -> None:
        self.pubs.append(pub)

    def seqs(self, channel: str) -> list[int]:
        return [p.seq for p in self.pubs if p.channel == channel]


async def admin(url: str, *command: str | int) -> Any:
    client = aioredis.Redis.from_url(url, socket_timeout=units(30))
    try:
        return await client.execute_command(*command)  # type: ignore[no-untyped-call]
    finally:
        await client.aclose()


async def test_create_broker_builds_a_redis_broker_for_redis_urls(redis_url: str) -> None:
    broker = create_broker(redis_url, history_size=7)
    assert isinstance(broker, RedisBroker)
    assert broker.status()["connected"] is False


async def test_a_publication_on_one_instance_reaches_the_others_handler(
    make_broker: BrokerFactory,
) -> None:
    a, b = await make_broker(), await make_broker()
    seen = Seen()
    b.set_handler(seen)
    await b.subscribe("agent:agent_1:account")
    for i in range(3):
        await a.publish("agent:agent_1:account", {"equity": i})
    await eventually(lambda: len(seen.pubs) == 3, message="three publications on B")
    assert seen.seqs("agent:agent_1:account") == [1, 2, 3]
    assert json.loads(bytes(seen.pubs[-1].data)) == {"equity": 2}
    assert [p.seq for p in await b.last("agent:agent_1:account")] == [3]


async def test_concurrent_publishers_share_one_gap_free_sequence(
    make_broker: BrokerFactory,
) -> None:
    a, b, watcher = await make_broker(), await make_broker(), await make_broker()
    seen = Seen()
    watcher.set_handler(seen)
    await watcher.subscribe("signals")

    async def burst(broker: RedisBroker) -> list[int]:
        return [(await broker.publish("signals", {"n": n})).seq for n in range(40)]

    from_a, from_b = await asyncio.gather(burst(a), burst(b))
    assert sorted(from_a + from_b) == list(range(1, 81))
    await eventually(lambda: len(seen.pubs) == 80, message="all 80 publications")
    assert seen.seqs("signals") == list(range(1, 81))


async def test_a_pattern_matches_exactly_one_segment(make_broker: BrokerFactory) -> None:
    a, b = await make_broker(), await make_broker()
    seen = Seen()
    b.set_handler(seen)
    await b.subscribe("agent:*:account")
    await b.subscribe("*")
    await a.publish("agent:x:ticks", {}, key="X")
    await a.publish("agent:y:account", {"equity": 1})
    await a.publish("summary", {"total": 1})
    await a.publish("agent:z:account", {"equity": 2})
    await eventually(lambda: len(seen.pubs) == 3, message="three matching publications")
    await a.publish("signals", {"last": True})
    await eventually(lambda: len(seen.pubs) == 4, message="the last one")
    assert [p.channel for p in seen.pubs] == [
        "agent:y:account",
        "summary",
        "agent:z:account",
        "signals",
    ]


async def test_a_channel_matched_twice_is_handed_over_once(make_broker: BrokerFactory) -> None:
    a, b = await make_broker(), await make_broker()
    seen = Seen()
    b.set_handler(seen)
    await b.subscribe("agent:*:orders")
    await b.subscribe("agent:agent_1:orders")
    for i in range(5):
        await a.publish("agent:agent_1:orders", {"i": i})
    await a.publish("system", {"marker": True})  # not subscribed: handed by A only
    await a.publish("agent:agent_2:orders", {"i": 0})
    await eventually(lambda: len(seen.pubs) == 6, message="six publications")
    await asyncio.sleep(units(1))
    assert seen.seqs("agent:agent_1:orders") == [1, 2, 3, 4, 5]
    assert seen.seqs("agent:agent_2:orders") == [1]


async def test_unsubscribe_stops_the_delivery(make_broker: BrokerFactory) -> None:
    a, b = await make_broker(), await make_broker()
    seen = Seen()
    b.set_handler(seen)
    await b.subscribe("system")
    await a.publish("system", {"i": 1})
    await eventually(lambda: len(seen.pubs) == 1, message="the first publication")
    await b.unsubscribe("system")
    await a.publish("system", {"i": 2})
    await b.subscribe("signals")
    await a.publish("signals", {"i": 1})
    await eventually(lambda: len(seen.pubs) == 2, message="the signals publication")
    assert [(p.channel, p.seq) for p in seen.pubs] == [("system", 1), ("signals", 1)]
    assert b.status()["subscriptions"] == 1


async def test_one_pubsub_connection_serves_every_subscription(
    make_broker: BrokerFactory, private_redis: RedisServer
) -> None:
    broker = await make_broker(private_redis.url)
    for agent in ("a", "b", "c"):
        await broker.subscribe(f"agent:{agent}:ticks")
    await broker.subscribe("agent:*:orders")
    await broker.subscribe("*")
    clients = await admin(private_redis.url, "CLIENT", "LIST", "TYPE", "pubsub")
    lines = [line for line in clients.decode().splitlines() if line]
    assert len(lines) == 1
    assert "sub=3" in lines[0]
    assert "psub=2" in lines[0]


async def test_publish_reloads_its_script_after_a_script_flush(
    make_broker: BrokerFactory, redis_url: str
) -> None:
    broker = await make_broker()
    await broker.publish("signals", {"i": 1})
    await admin(redis_url, "SCRIPT", "FLUSH")
    assert (await broker.publish("signals", {"i": 2})).seq == 2


async def test_history_is_capped_in_redis(make_broker: BrokerFactory, redis_url: str) -> None:
    broker = await make_broker(history_size=3)
    for i in range(10):
        await broker.publish("agent:a:orders", {"i": i})
    prefix = broker.status()["prefix"]
    assert await admin(redis_url, "LLEN", f"{prefix}:hist:agent:a:orders") == 3
    assert await broker.history("agent:a:orders", 6) is None
    replay = await broker.history("agent:a:orders", 7)
    assert replay is not None
    assert [p.seq for p in replay] == [8, 9, 10]


async def test_a_killed_subscriber_connection_catches_up_from_history(
    make_broker: BrokerFactory, private_redis: RedisServer
) -> None:
    a = await make_broker(private_redis.url)
    b = await make_broker(private_redis.url, backoff=(units(3), units(3)))
    seen = Seen()
    b.set_handler(seen)
    await b.subscribe("agent:agent_1:ticks")
    await b.subscribe("agent:*:orders")
    await a.publish("agent:agent_1:orders", {"i": 0})
    for i in range(3):
        await a.publish("agent:agent_1:ticks", {"bid": i}, key="XAUUSD")
    await eventually(lambda: len(seen.pubs) == 4, message="the first four")
    assert await admin(private_redis.url, "CLIENT", "KILL", "TYPE", "pubsub") == 1
    for i in range(3, 8):  # while B reconnects (after at least 0.15 units)
        await a.publish("agent:agent_1:ticks", {"bid": i}, key="XAUUSD")
        await a.publish("agent:agent_1:orders", {"i": i})
    await eventually(lambda: b.status()["reconnects"] == 1, message="B's reconnect")
    await a.publish("agent:agent_1:ticks", {"bid": 8}, key="XAUUSD")
    await eventually(lambda: len(seen.seqs("agent:agent_1:ticks")) == 9, message="every tick")
    await eventually(
        lambda: len(seen.seqs("agent:agent_1:orders")) == 6, message="every order event"
    )
    assert seen.seqs("agent:agent_1:ticks") == list(range(1, 10))
    assert seen.seqs("agent:agent_1:orders") == list(range(1, 7))
    assert b.status()["gaps"] == 0


async def test_a_gap_beyond_history_hands_over_the_latest_state(
    make_broker: BrokerFactory, private_redis: RedisServer
) -> None:
    a = await make_broker(private_redis.url, history_size=2)
    b = await make_broker(private_redis.url, history_size=2, backoff=(units(5), units(5)))
    seen = Seen()
    b.set_handler(seen)
    await b.subscribe("agent:agent_1:ticks")
    await a.publish("agent:agent_1:ticks", {"bid": 0}, key="EURUSD")
    await eventually(lambda: len(seen.pubs) == 1, message="the first tick")
    await admin(private_redis.url, "CLIENT", "KILL", "TYPE", "pubsub")
    await a.publish("agent:agent_1:ticks", {"bid": 1}, key="XAUUSD")  # seq 2, beyond history
    for i in range(2, 5):
        await a.publish("agent:agent_1:ticks", {"bid": i}, key="EURUSD")
    await eventually(lambda: b.status()["gaps"] == 1, message="the gap to be noticed")
    await eventually(
        lambda: seen.seqs("agent:agent_1:ticks")[-1:] == [5], message="the latest tick"
    )
    assert seen.seqs("agent:agent_1:ticks") == [1, 2, 4, 5]  # XAUUSD's last value kept


async def test_a_redis_restart_is_an_epoch_change_and_publishing_resumes(
    make_broker: BrokerFactory, private_redis: RedisServer
) -> None:
    a = await make_broker(private_redis.url, backoff=(units(0.5), units(2)))
    b = await make_broker(private_redis.url, backoff=(units(0.5), units(2)))
    seen = Seen()
    b.set_handler(seen)
    await b.subscribe("agent:agent_1:account")
    for i in range(3):
        await a.publish("agent:agent_1:account", {"equity": i})
    await eventually(lambda: len(seen.pubs) == 3, message="three before the restart")
    old_epoch = seen.pubs[0].epoch

    await asyncio.to_thread(private_redis.kill)
    with pytest.raises(RedisUnavailable, match=r"publish to 'agent:agent_1:account'"):
        await a.publish("agent:agent_1:account", {"equity": -1})
    await eventually(lambda: not b.healthy, message="B to notice the outage")
    status = b.status()
    assert status["connected"] is False
    assert status["last_error"]

    await asyncio.to_thread(private_redis.start)
    await eventually(lambda: b.healthy, message="B to reconnect")
    for i in range(3, 6):
        await a.publish("agent:agent_1:account", {"equity": i})
    await eventually(lambda: len(seen.pubs) == 6, message="three after the restart")
    new_epoch = seen.pubs[-1].epoch
    assert new_epoch != old_epoch
    assert [(p.epoch, p.seq) for p in seen.pubs] == [
        *((old_epoch, s) for s in (1, 2, 3)),
        *((new_epoch, s) for s in (1, 2, 3)),
    ]
    assert await b.history("agent:agent_1:account", 1, old_epoch) is None
    assert b.status()["reconnects"] == 1


async def test_subscribe_while_redis_is_down_fails_clearly(
    make_broker: BrokerFactory, private_redis: RedisServer
) -> None:
    broker = await make_broker(private_redis.url, timeout=units(3))
    await asyncio.to_thread(private_redis.kill)
    await eventually(lambda: not broker.healthy, message="the outage to be noticed")
    with pytest.raises(RedisUnavailable, match="subscribe to 'signals'"):
        await broker.subscribe("signals")
    assert broker.status()["subscriptions"] == 0


async def test_connect_to_a_redis_that_is_not_there_fails_clearly(
    private_redis: RedisServer,
) -> None:
    await asyncio.to_thread(private_redis.kill)
    broker = RedisBroker(private_redis.url, timeout=units(3))
    with pytest.raises(
        RedisUnavailable, match=rf"connect: Redis at 127.0.0.1:{private_redis.port}"
    ):
        await broker.connect()
    await broker.close()


# -- the feed and the WebSocket session on Redis, end to end ---------------------------------


async def test_a_feed_on_b_gets_snapshot_then_every_tick_published_on_a(
    make_broker: BrokerFactory,
) -> None:
    a, b = await make_broker(), await make_broker()
    for symbol in ("XAUUSD", "EURUSD"):
        await a.publish("agent:agent_1:ticks", {"symbol": symbol}, key=symbol)
    node = Node(b)
    outbox = Outbox(soft_limit=5_000, hard_limit=10_000)
    feed = Feed(node, outbox)

    async def publisher() -> None:
        for i in range(30):
            symbol = ("XAUUSD", "EURUSD", "GBPUSD")[i % 3]
            await a.publish("agent:agent_1:ticks", {"symbol": symbol, "i": i}, key=symbol)

    task = asyncio.create_task(publisher())
    results: list[SyncResult] = []
    await feed.subscribe(["agent:agent_1:ticks"], {}, results.append)
    await task
    messages: list[dict[str, Any]] = []

    def collected() -> bool:
        messages.extend(json.loads(i.frame) for i in outbox.take(1000) if i.frame is not None)
        return bool(messages) and messages[-1]["seq"] == 32

    await eventually(collected, message="the last tick")
    snapshots = [m for m in messages if m["type"] == "snapshot"]
    events = [m["seq"] for m in messages if m["type"] == "event"]
    start = max(s["seq"] for s in snapshots)
    assert messages[: len(snapshots)] == snapshots
    assert events == list(range(start + 1, 33))
    await feed.close()


async def test_a_ws_client_on_b_sees_a_gap_free_stream_across_a_pubsub_drop(
    private_redis: RedisServer, make_broker: BrokerFactory
) -> None:
    limits = SessionLimits(heartbeat=units(50), auth_timeout=units(3))
    a = await make_broker(private_redis.url)
    b = await make_broker(private_redis.url, backoff=(units(3), units(3)))
    async with (
        serve_app(build_app(Node(b), limits)) as (_, port),
        websockets.connect(f"ws://127.0.0.1:{port}/ws?token=read-t") as ws,
    ):
        assert (await recv(ws))["type"] == "welcome"
        await ws.send(dumps({"op": "subscribe", "id": "1", "channels": ["agent:*:orders"]}))
        assert (await recv(ws))["type"] == "subscribed"
        await a.publish("agent:agent_1:orders", {"event": "filled", "i": 1})
        assert (await recv(ws))["seq"] == 1
        await admin(private_redis.url, "CLIENT", "KILL", "TYPE", "pubsub")
        for i in range(2, 6):
            await a.publish("agent:agent_1:orders", {"event": "filled", "i": i})
        got = [await recv(ws) for _ in range(4)]
    assert [(m["type"], m["seq"], m["data"]["i"]) for m in got] == [
        ("event", s, s) for s in range(2, 6)
    ]
    assert b.status()["reconnects"] == 1
