"""The outbox on a real SQLite file: order per target, attempts, pages, pruning."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.notify.outbox import NewDelivery, Outbox
from hub.records import QueryError


def _new(target: str, event: str, n: int) -> NewDelivery:
    return NewDelivery(target=target, event=event, agent_id="agent_1", text=f"{event} {n}",
                       data={"n": n}, created_at=n)  # fmt: skip


async def test_each_target_gets_its_oldest_pending_row_first(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "n.db")
    await box.open()
    try:
        await box.add([_new("a", "filled", 1), _new("b", "filled", 2), _new("a", "closed", 3)])
        first = await box.next_pending("a")
        assert first is not None and (first.event, first.data) == ("filled", {"n": 1})
        await box.failed(first.id, "HTTP 503: busy")
        again = await box.next_pending("a")
        assert again is not None and again.id == first.id
        assert (again.attempts, again.last_error) == (1, "HTTP 503: busy")
        await box.delivered(first.id)
        after = await box.next_pending("a")
        assert after is not None and after.event == "closed"
        b = await box.next_pending("b")
        assert b is not None and b.data == {"n": 2}
        assert await box.pending_counts() == {"a": 1, "b": 1}
    finally:
        await box.close()


async def test_rows_survive_a_reopen_and_page_newest_first(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "n.db")
    await box.open()
    await box.add([_new("a", "filled", n) for n in range(5)])
    await box.close()
    box = Outbox(tmp_path / "n.db")
    await box.open()
    try:
        page = await box.page(limit=2)
        assert [r.data["n"] for r in page] == [4, 3]
        rest = await box.page(limit=10, before=page[-1].id)
        assert [r.data["n"] for r in rest] == [2, 1, 0]
        assert await box.page(target="b") == []
        with pytest.raises(QueryError, match="limit"):
            await box.page(limit=0)
    finally:
        await box.close()


async def test_delivered_rows_beyond_the_newest_kept_are_pruned(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "n.db", keep_delivered=2)
    await box.open()
    try:
        await box.add([_new("a", "filled", n) for n in range(4)])
        for _ in range(4):
            row = await box.next_pending("a")
            assert row is not None
            await box.delivered(row.id)
        assert [r.data["n"] for r in await box.page()] == [3, 2]
    finally:
        await box.close()


async def test_a_cursor_beyond_64_bits_is_a_named_query_error(tmp_path: Path) -> None:
    """Found by the OpenAPI fuzz test: SQLite raised OverflowError (a 500)."""
    box = Outbox(tmp_path / "n.db")
    await box.open()
    try:
        with pytest.raises(QueryError, match="before"):
            await box.page(before=2**63)
        assert await box.page(before=2**63 - 1) == []
    finally:
        await box.close()
