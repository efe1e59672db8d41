"""Many simulated EA Bridges in one process: ``python -m bench.simfarm --bridges 100``.

Prints ``{"ready": true, "ports": [...]}`` and serves until stdin closes.
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

import uvloop

from bench._control import raise_fd_limit, serve_commands
from hub.bridge.sim_server import SimServer, start_sim
from hub.config import SymbolSpec

__all__ = ["main"]

_SPECS = {
    "XAUUSD": SymbolSpec(contract_size=100, digits=2),
    "EURUSD": SymbolSpec(contract_size=100000, digits=5),
    "GBPUSD": SymbolSpec(contract_size=100000, digits=5),
    "USDJPY": SymbolSpec(contract_size=100000, digits=3, quote_currency="JPY"),
}


async def _main(bridges: int, symbols: list[str]) -> None:
    raise_fd_limit()
    specs = {s: _SPECS[s] for s in symbols}
    sims: list[SimServer] = []
    try:
        for i in range(bridges):
            sims.append(await start_sim("127.0.0.1", 0, symbols=specs, balance=10_000, seed=i))

        async def handle(command: dict[str, Any]) -> dict[str, Any]:
            raise ValueError(f"cmd: unknown command {command.get('cmd')!r}")

        await serve_commands({"pid": os.getpid(), "ports": [s.port for s in sims]}, handle)
    finally:
        for sim in sims:
            await sim.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.simfarm", description=__doc__)
    parser.add_argument("--bridges", type=int, default=100)
    parser.add_argument("--symbols", default="XAUUSD")
    args = parser.parse_args(argv)
    unknown = set(args.symbols.split(",")) - set(_SPECS)
    if unknown or args.bridges < 1:
        parser.error(f"--symbols: one of {sorted(_SPECS)}; --bridges: >= 1 (got {args})")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    uvloop.run(_main(args.bridges, args.symbols.split(",")))


if __name__ == "__main__":
    main()
