"""The durable spool: an append-only JSON-lines file, read back in order."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.records import LogRecord, Spool, SpoolError, TickRecord
from hub.records.records import Record


def records(n: int, start: int = 0) -> list[Record]:
    out: list[Record] = []
    for i in range(start, start + n):
        out.append(TickRecord(agent_id="agent_1", symbol="EURUSD", bid=1.0, ask=1.1, time=i))
        out.append(
            LogRecord(
                agent_id=None, event_type="t", message=str(i), record_key=f"k{i}", created_at=i
            )
        )
    return out


def read_all(spool: Spool) -> list[Record]:
    out: list[Record] = []
    offset = 0
    while True:
        batch, offset_after = spool.read(offset, 3)
        if offset_after == offset:
            return out
        out += batch
        offset = offset_after


def test_records_come_back_in_order_after_a_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    spool.open()
    spool.append(records(3))
    spool.append(records(2, start=3))
    spool.close()

    again = Spool(tmp_path / "spool")
    again.open()
    assert again.records == 10
    assert again.size == (tmp_path / "spool" / "records.jsonl").stat().st_size
    assert read_all(again) == records(5)
    again.close()


def test_clear_empties_the_file(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    spool.append(records(2))
    spool.clear()
    assert (spool.records, spool.size) == (0, 0)
    assert spool.read(0, 10) == ([], 0)
    spool.append(records(1, start=7))
    assert read_all(spool) == records(1, start=7)
    spool.close()


def test_a_torn_last_line_is_cut_off_at_open(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.open()
    spool.append(records(2))
    spool.close()
    with open(spool.path, "ab") as f:
        f.write(b'{"kind":"tick","agent_id":"agent_1","sym')  # a crash mid-write
    spool.open()
    assert spool.records == 4
    spool.append(records(1, start=2))
    assert read_all(spool) == records(3)
    spool.close()


def test_an_undecodable_line_is_skipped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    spool.open()
    spool.append(records(1))
    with open(spool.path, "ab") as f:
        f.write(b'{"kind":"nope"}\n')
    spool.append(records(1, start=1))
    assert read_all(spool) == records(2)
    assert "undecodable" in caplog.text
    spool.close()


def test_a_second_process_cannot_use_the_same_spool(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.open()
    with pytest.raises(SpoolError, match="in use"):
        Spool(tmp_path).open()
    first.close()
    second = Spool(tmp_path)
    second.open()
    second.close()
