"""The broker contract, run against every backend (Redis: see tests/channels/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
import pytest

from channels.broker import Broker, Publication, create_broker
from channels.redis import RedisBroker
from tests.rediskit import redis_prefix

BACKENDS = ["memory://", "redis"]


@pytest.fixture(params=BACKENDS)
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    instance: Broker
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        instance = RedisBroker(url, history_size=5, prefix=redis_prefix())
    else:
        instance = create_broker(request.param, history_size=5)
    await instance.connect()
    yield instance
    await instance.close()


async def test_seq_is_gap_free_per_channel(broker: Broker) -> None:
    seqs = [(await broker.publish("agent:a:orders", {"n": i})).seq for i in range(4)]
    other = await broker.publish("signals", {"n": 0})
    assert seqs == [1, 2, 3, 4]
    assert other.seq == 1


async def test_publication_carries_time_epoch_key_and_raw_json(broker: Broker) -> None:
    pub = await broker.publish("agent:a:ticks", {"symbol": "XAUUSD", "bid": 1.5}, key="XAUUSD")
    assert pub.ts > 1_600_000_000_000
    assert pub.epoch == await broker.epoch("agent:a:ticks")
    assert pub.key == "XAUUSD"
    assert msgspec.json.decode(pub.data) == {"symbol": "XAUUSD", "bid": 1.5}


async def test_bytes_are_taken_as_encoded_json(broker: Broker) -> None:
    pub = await broker.publish("summary", b'{"total":1}')
    assert bytes(pub.data) == b'{"total":1}'


async def test_status_names_the_backend_and_its_health(broker: Broker) -> None:
    status = broker.status()
    assert status["kind"] == ("redis" if isinstance(broker, RedisBroker) else "memory")
    assert status["healthy"] is True


async def test_handler_gets_every_publication_in_order(broker: Broker) -> None:
    seen: list[Publication] = []
    broker.set_handler(seen.append)
    for i in range(3):
        await broker.publish("system", {"i": i})
    assert [p.seq for p in seen] == [1, 2, 3]


async def test_last_keeps_one_value_per_key_for_ticks(broker: Broker) -> None:
    await broker.publish("agent:a:ticks", {"s": "X", "v": 1}, key="X")
    await broker.publish("agent:a:ticks", {"s": "E", "v": 1}, key="E")
    await broker.publish("agent:a:ticks", {"s": "X", "v": 2}, key="X")
    last = await broker.last("agent:a:ticks")
    assert [(p.key, p.seq) for p in last] == [("E", 2), ("X", 3)]


async def test_last_keeps_the_latest_state_and_nothing_for_events(broker: Broker) -> None:
    await broker.publish("agent:a:account", {"equity": 1})
    await broker.publish("agent:a:account", {"equity": 2})
    await broker.publish("agent:a:orders", {"event": "filled"})
    assert [p.seq for p in await broker.last("agent:a:account")] == [2]
    assert await broker.last("agent:a:orders") == []
    assert await broker.last("agent:b:account") == []


async def test_history_returns_what_follows_since(broker: Broker) -> None:
    for i in range(4):
        await broker.publish("signals", {"i": i})
    replay = await broker.history("signals", 2)
    assert replay is not None
    assert [p.seq for p in replay] == [3, 4]
    assert await broker.history("signals", 4) == []
    assert await broker.history("agent:z:orders", 0) == []


async def test_history_is_none_when_it_no_longer_reaches_back(broker: Broker) -> None:
    for i in range(8):  # history_size is 5: seqs 4..8 are kept
        await broker.publish("signals", {"i": i})
    assert await broker.history("signals", 2) is None
    replay = await broker.history("signals", 3)
    assert replay is not None
    assert [p.seq for p in replay] == [4, 5, 6, 7, 8]


async def test_history_is_none_for_another_epoch_or_a_seq_ahead(broker: Broker) -> None:
    await broker.publish("signals", {"i": 0})
    epoch = await broker.epoch("signals")
    assert await broker.history("signals", 0, epoch) is not None
    assert await broker.history("signals", 0, "old-epoch") is None
    assert await broker.history("signals", 9) is None


async def test_channels_lists_known_channels_matching_a_pattern(broker: Broker) -> None:
    await broker.publish("agent:a:account", {})
    await broker.publish("agent:b:account", {})
    await broker.publish("agent:b:ticks", {}, key="X")
    assert sorted(await broker.channels("agent:*:account")) == [
        "agent:a:account",
        "agent:b:account",
    ]


async def test_publish_refuses_patterns_and_unknown_channels(broker: Broker) -> None:
    with pytest.raises(ValueError, match="pattern"):
        await broker.publish("agent:*:ticks", {})
    with pytest.raises(ValueError, match="unknown channel 'nope'"):
        await broker.publish("nope", {})


async def test_subscribe_and_unsubscribe_are_accepted(broker: Broker) -> None:
    await broker.subscribe("agent:*:ticks")
    await broker.unsubscribe("agent:*:ticks")


def test_each_memory_broker_has_its_own_epoch() -> None:
    import asyncio

    async def epochs() -> tuple[str, str]:
        return await create_broker(None).epoch("x"), await create_broker("memory://").epoch("x")

    first, second = asyncio.run(epochs())
    assert first != second


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="scheme must be memory:// or redis://"):
        create_broker("kafka://x")
