"""The hub process's garbage-collector policy."""

from __future__ import annotations

import gc

import pytest

from hub.gc_policy import tune_gc


def test_tune_gc_freezes_and_raises_the_gen0_threshold() -> None:
    previous = tune_gc(40_000, 15, 50)
    try:
        assert gc.get_threshold() == (40_000, 15, 50)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*previous)
    with pytest.raises(ValueError, match="gc thresholds"):
        tune_gc(0)
