"""The order-tag index: read the day once, then what closed since; never a false "no"."""

from __future__ import annotations

from hub.bridge.tag_index import MARGIN_MS, TagIndex

DAY = 86_400_000
NOW = 1_764_500_000_000


def test_the_first_read_is_the_whole_window_then_from_the_newest_close_less_the_margin() -> None:
    index = TagIndex(DAY)
    assert index.since(NOW) == NOW - DAY
    index.add(NOW - DAY, [(1, NOW - 60_000, "ha"), (2, NOW - 1_000, "hb")])
    assert index.since(NOW) == NOW - 1_000 - MARGIN_MS
    assert index.may_hold("ha") and index.may_hold("hb") and not index.may_hold("hc")


def test_rows_read_twice_in_the_margin_are_kept_once_and_rows_before_the_read_not_at_all() -> None:
    index = TagIndex(DAY)
    index.add(NOW - DAY, [(1, NOW - 1_000, "ha")])
    since = index.since(NOW)
    # A bridge that ignores `since` sends the whole day again, plus one new close.
    index.add(since, [(0, NOW - 2 * MARGIN_MS, "hz"), (1, NOW - 1_000, "ha"), (3, NOW, "hc")])
    assert len(index) == 2
    assert not index.may_hold("hz")  # before the read's start: indexed then, or expired
    # A partial close: the same ticket closed again later is a row of its own.
    index.add(index.since(NOW), [(1, NOW + 5, "ha")])
    assert len(index) == 3


def test_rows_older_than_the_window_are_dropped_and_the_rest_kept() -> None:
    index = TagIndex(DAY)
    index.add(NOW - DAY, [(1, NOW - DAY + 10, "ha"), (2, NOW - 5, "hb")])
    index.expire(NOW + 9)
    assert index.may_hold("ha")
    index.expire(NOW + 11)
    assert not index.may_hold("ha") and index.may_hold("hb") and len(index) == 1


def test_a_match_must_start_on_a_row_not_straddle_two() -> None:
    """Keys are 8-byte hashes back to back: bytes spanning two rows are not a key."""
    index = TagIndex(DAY)
    a, b = 0x0111111122222222, 0x0333333311111111  # below 2**61: hash(n) == n
    index.add(NOW - DAY, [(1, NOW, a), (2, NOW, b)])
    straddle = int.from_bytes(a.to_bytes(8, "little")[4:] + b.to_bytes(8, "little")[:4], "little")
    assert index._keys.find(straddle.to_bytes(8, "little")) == 4  # the bytes are there
    assert index.may_hold(a) and index.may_hold(b)
    assert not index.may_hold(straddle)


def test_memory_is_sixteen_bytes_a_closed_trade() -> None:
    index = TagIndex(DAY)
    index.add(NOW - DAY, ((t, NOW - DAY + t * 1000, t + 1) for t in range(100_000)))  # 1 s apart
    assert len(index._keys) == 800_000 and index._times.itemsize * len(index._times) == 800_000
    assert len(index._recent) == MARGIN_MS // 1000 + 1  # only the rows within the margin
