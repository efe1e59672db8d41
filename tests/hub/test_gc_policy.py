"""The hub process's garbage-collector policy."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import tempfile
import weakref
from collections.abc import Iterator

import pytest

from hub.app import create_app
from hub.gc_policy import Schedule, tune_gc
from tests.hubkit import TOKEN, hub_config
from tests.timing import eventually, units


class _Node:
    """A reference cycle: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


@contextlib.contextmanager
def tuned() -> Iterator[None]:
    previous = tune_gc()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*previous)


def _dropped_cycle() -> weakref.ref[_Node]:
    node = _Node()
    return weakref.ref(node)


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


def test_garbage_made_slowly_waits_for_the_schedule_not_for_50_000_allocations() -> None:
    """A quiet hub makes a few cycles a second (a closed connection, a bridge fault): with
    the raised gen-0 threshold the interpreter would collect them after hours (a 2-hour
    soak grew 400 of them a minute and had not collected once at minute 30)."""
    with tuned():
        ref = _dropped_cycle()
        assert ref() is not None  # the interpreter alone: not yet
        assert Schedule().collect_due() == 0
        assert ref() is None


def test_the_schedule_collects_the_older_generations_as_the_interpreter_counts_them() -> None:
    previous = gc.get_threshold()
    gc.set_threshold(50_000, 2, 1)
    try:
        gc.collect()
        schedule = Schedule(full_every=0.0)
        # gen 1 once its count passes 2 (three gen-0 passes), gen 2 once its count passes 1
        assert [schedule.collect_due() for _ in range(9)] == [0, 0, 0, 1, 0, 0, 0, 1, 2]
        hourly = Schedule(full_every=3600.0)  # a full pass at most once an hour
        assert [hourly.collect_due() for _ in range(9)] == [0, 0, 0, 1, 0, 0, 0, 1, 0]
    finally:
        gc.set_threshold(*previous)


async def test_the_schedule_runs_on_its_clock() -> None:
    with tuned():
        task = asyncio.create_task(Schedule(every=0.01).run())
        try:
            ref = _dropped_cycle()
            await eventually(lambda: ref() is None, timeout=units(20), message="a collection")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _schedules() -> list[asyncio.Task[None]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "gc-schedule" and not t.done()]


async def test_the_hub_of_mt4hub_run_collects_on_the_schedule_while_it_runs() -> None:
    previous = gc.get_threshold()
    with tempfile.TemporaryDirectory(prefix="mt4hub-test-") as tmp:
        env = {"HUB_ADMIN_TOKEN": TOKEN, "HUB_DATA_DIR": tmp}
        app = create_app(hub_config(), env=env, tune_gc=True)  # as `mt4hub run`
        try:
            async with app.router.lifespan_context(app):
                assert gc.get_threshold() == (50_000, 20, 100)
                assert len(_schedules()) == 1
            await asyncio.sleep(0)  # the cancelled task finishes
            assert _schedules() == []
        finally:
            gc.unfreeze()
            gc.set_threshold(*previous)
