"""KeyRing: the newest keys in fixed buffers, against a plain list as the model."""

from __future__ import annotations

import gc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.trading.keyring import KeyRing


def test_the_oldest_key_is_overwritten_past_capacity() -> None:
    ring = KeyRing(3, fields=1)
    for n in range(5):
        ring.add(f"k{n}", n * 10)
    assert len(ring) == 3
    assert ring.find("k0") is None and ring.find("k1") is None
    assert [ring.value(slot, 0) for slot in ring.slots()] == [20, 30, 40]


def test_adding_a_key_again_forgets_its_earlier_slot() -> None:
    ring = KeyRing(3, fields=1)
    ring.add("a", 1)
    ring.add("b", 2)
    slot = ring.add("a", 3)
    assert ring.find("a") == slot and ring.value(slot, 0) == 3
    assert len(ring) == 2
    assert [ring.value(s, 0) for s in ring.slots()] == [2, 3]


def test_expire_forgets_the_oldest_below_a_cutoff_and_stops_at_the_first_kept() -> None:
    ring = KeyRing(4, fields=1)
    for n, at in enumerate([10, 20, 30, 40]):
        ring.add(f"k{n}", at)
    ring.expire(0, 25)
    assert len(ring) == 2 and ring.find("k1") is None and ring.find("k2") is not None
    ring.expire(0, 100)
    assert len(ring) == 0 and list(ring.slots()) == []
    ring.add("new", 200)
    assert len(ring) == 1 and ring.find("new") is not None


def test_a_ring_keeps_no_object_per_key() -> None:
    ring = KeyRing(1000, fields=2)
    gc.collect()
    before = len(gc.get_referents(*gc.get_referents(ring.__dict__)))
    for n in range(5000):
        ring.add(f"agent_1\x1fcoid-{n}", n, n)
    assert len(gc.get_referents(*gc.get_referents(ring.__dict__))) == before


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        KeyRing(0)


@given(
    capacity=st.integers(1, 6),
    ops=st.lists(st.tuples(st.sampled_from(["add", "forget"]), st.integers(0, 9)), max_size=60),
)
def test_a_ring_holds_what_a_list_of_the_newest_additions_holds(
    capacity: int, ops: list[tuple[str, int]]
) -> None:
    """Model: the last ``capacity`` additions, each a key or (forgotten) None."""
    ring, model = KeyRing(capacity, fields=1), []
    for op, n in ops:
        key = f"key-{n}"
        if op == "add":
            model = [None if k == key else k for k in model] + [key]
            model = model[-capacity:]
            ring.add(key, n)
        elif (slot := ring.find(key)) is not None:
            ring.forget(slot)
            model = [None if k == key else k for k in model]
        kept = [k for k in model if k is not None]
        assert len(ring) == len(kept)
        assert [ring.value(slot, 0) for slot in ring.slots()] == [int(k[4:]) for k in kept]
        for m in range(10):
            assert (ring.find(f"key-{m}") is not None) == (f"key-{m}" in kept)
