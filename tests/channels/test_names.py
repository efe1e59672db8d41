import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels import names
from channels.errors import InvalidChannel


def test_agent_channel_builds_each_kind() -> None:
    assert names.agent_channel("agent_1", "ticks") == "agent:agent_1:ticks"
    assert names.agent_channel("a-2.x", "orders") == "agent:a-2.x:orders"


@pytest.mark.parametrize("agent", ["", "a:b", "a b", "*", "x" * 65])
def test_agent_channel_refuses_bad_ids(agent: str) -> None:
    with pytest.raises(InvalidChannel, match="agent id"):
        names.agent_channel(agent, "ticks")


def test_agent_channel_refuses_unknown_kind() -> None:
    with pytest.raises(InvalidChannel, match="kind 'bars'"):
        names.agent_channel("agent_1", "bars")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("channel", "state"),
    [
        ("agent:a:ticks", True),
        ("agent:a:account", True),
        ("agent:a:positions", True),
        ("agent:a:status", True),
        ("summary", True),
        ("agent:a:orders", False),
        ("signals", False),
        ("system", False),
    ],
)
def test_is_state_splits_state_and_event_channels(channel: str, state: bool) -> None:
    assert names.is_state(channel) is state


def test_agent_of() -> None:
    assert names.agent_of("agent:agent_1:ticks") == "agent_1"
    assert names.agent_of("agent:*:ticks") == "*"
    assert names.agent_of("summary") is None


@pytest.mark.parametrize(
    ("pattern", "channel", "expected"),
    [
        ("agent:*:account", "agent:agent_1:account", True),
        ("agent:*:account", "agent:agent_1:ticks", False),
        ("agent:agent_1:*", "agent:agent_1:orders", True),
        ("agent:*:*", "summary", False),
        ("*", "summary", True),
        ("*", "agent:a:ticks", False),
        ("summary", "summary", True),
        ("agent:*", "agent:a:ticks", False),
    ],
)
def test_star_matches_exactly_one_segment(pattern: str, channel: str, expected: bool) -> None:
    assert names.matches(pattern, channel) is expected


def test_is_pattern() -> None:
    assert names.is_pattern("agent:*:ticks")
    assert not names.is_pattern("agent:a*:ticks")
    assert not names.is_pattern("summary")


@pytest.mark.parametrize(
    "name", ["summary", "signals", "system", "*", "agent:a:ticks", "agent:*:*", "*:*:orders"]
)
def test_validate_accepts_channels_and_patterns(name: str) -> None:
    assert names.validate(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "summaries", "agent:a", "agent:a:bars", "agent:a b:ticks", "x:a:ticks", "a:b:c:d"],
)
def test_validate_names_the_unknown_channel(name: str) -> None:
    with pytest.raises(InvalidChannel, match=f"unknown channel {name!r}"):
        names.validate(name)


_SEGMENT = st.sampled_from(["agent", "a", "b", "ticks", "orders", "*"])


@given(
    channel=st.lists(st.sampled_from(["agent", "a", "b", "ticks"]), min_size=1, max_size=3),
    pattern=st.lists(_SEGMENT, min_size=1, max_size=3),
)
def test_subscriptions_for_lists_exactly_the_names_that_match(
    channel: list[str], pattern: list[str]
) -> None:
    concrete, name = ":".join(channel), ":".join(pattern)
    assert (name in names.subscriptions_for(concrete)) == names.matches(name, concrete)


def test_a_channel_is_matched_by_at_most_eight_names() -> None:
    assert len(names.subscriptions_for("agent:agent_1:ticks")) == 8
    assert names.subscriptions_for("summary") == ["summary", "*"]


@pytest.mark.parametrize(
    ("name", "readable"),
    [
        ("agent:agent_1:ticks", True),
        ("agent:agent_1:*", True),
        ("agent:*:ticks", True),  # a pattern: delivery is checked channel by channel
        ("*", True),
        ("system", True),
        ("agent:agent_2:ticks", False),
        ("*:agent_2:*", False),
        ("summary", False),
        ("signals", False),
    ],
)
def test_a_limited_reader_gets_its_agents_and_system_only(name: str, readable: bool) -> None:
    assert names.readable(name, frozenset({"agent_1"})) is readable
    assert names.readable(name, None)


def test_candles_are_a_state_channel_of_an_agent() -> None:
    assert names.agent_channel("agent_1", "candles") == "agent:agent_1:candles"
    assert names.is_state("agent:agent_1:candles")
    assert names.validate("agent:*:candles") == "agent:*:candles"
