"""Benchmarks for the hub (issue 4): ``python -m bench`` (``make bench``) runs them all.

Modules: :mod:`bench.serve` (the server under test in its own process: the real hub
or a baseline), :mod:`bench.load` (the load generator process), :mod:`bench.fanout`,
:mod:`bench.commands`, :mod:`bench.poller` (the benchmarks), :mod:`bench.report`
(tables, ``bench/results/latest.json``, ``BENCHMARKS.md``, the plot).
"""

__all__: list[str] = []
