"""The 2-minute soak (``bench/soak.py``, shortened): 200 subscribers, a steady trade/close
loop and a bridge fault every 30 s against a real hub process. Deselect with ``-m "not slow"``;
the long run is ``make soak`` (``python -m bench.soak --duration 1800``)."""

from __future__ import annotations

import pytest

from bench.soak import run_soak, summary
from tests.timing import units

RSS_GROWTH_BOUND_MB = 20.0  # over ~65 s after warm-up; measured ~2 MB (docs/reliability.md)


@pytest.mark.slow
async def test_soak_loses_no_order_event_and_memory_stays_bounded() -> None:
    lines: list[str] = []
    report = await run_soak(
        units(900),
        200,
        fault_every=units(300),
        fault_for=units(40),
        sample_every=units(50),
        warmup=units(250),
        out=lines.append,
    )
    text = "\n".join([*lines, summary(report)])
    print(text)  # the figures, for docs/reliability.md (shown with -s)
    assert report.errors == [], text
    assert report.order_events_published > 100, text
    assert report.order_events_lost == 0 and report.answered_without_event == [], text
    assert report.seq_gaps == 0, text
    assert report.commands.get("trade 200", 0) > 50, text
    assert len(report.faults) == 2, text
    assert report.offline_seen == report.online_again == len(report.faults), text
    assert report.rss_growth_mb < RSS_GROWTH_BOUND_MB, text
