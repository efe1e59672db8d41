"""The candle feed: folds every tick the hub publishes into bars, publishes and records them.

Wiring (in the app's lifespan)::

    feed = CandleFeed(publisher, writer.submit, store)
    await feed.resume(agent_id)      # when a poller starts here (start, or a takeover): the
                                     # newest stored bars, so the current ones go on from them
    await feed.tick(agent_id, tick)  # by the poller, after the tick went out

Each bid change updates the agent's M1, M5, M15 and H1 bar of that symbol: each is
published on ``agent:{id}:candles`` (a state channel keyed ``{symbol}:{tf}``) and handed
to the record writer, which batches them (only the last update of a bar in a batch is
written). A change of the ask alone changes no bar of the bid.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import msgspec

from hub.bridge.models import Tick
from hub.candles import Bar, CandleBook, Timeframe
from hub.publisher import Publisher
from hub.records import CandleRecord, Record, RecordsError, Store

__all__ = ["CandleFeed"]

log = logging.getLogger("mt4hub.candles")


class CandleFeed:
    def __init__(
        self, publisher: Publisher, submit: Callable[[Record], None], store: Store
    ) -> None:
        self.publisher = publisher
        self.submit = submit
        self.store = store
        self._books: dict[str, CandleBook] = {}
        self._bids: dict[tuple[str, str], float] = {}

    def book(self, agent_id: str) -> CandleBook:
        book = self._books.get(agent_id)
        if book is None:
            book = self._books[agent_id] = CandleBook()
        return book

    async def resume(self, agent_id: str, wait: float = 1.0) -> None:
        """Continue the agent's current bars from the newest stored ones (a stored bar with
        more ticks wins over the one held here, as after another instance polled it); a
        store that does not answer in ``wait`` seconds leaves the book as it is (logged)."""
        try:
            async with asyncio.timeout(wait):
                rows = await self.store.last_candles(agent_id)
        except (RecordsError, TimeoutError) as exc:
            log.warning("candles_not_resumed agent=%s error=%r", agent_id, str(exc))
            return
        except Exception:  # never keep the agent from being polled over its candles
            log.exception("candles_not_resumed agent=%s", agent_id)
            return
        bars = [msgspec.convert(msgspec.structs.asdict(r), Bar) for r in rows]
        self.book(agent_id).resume(bars)
        self._bids = {k: v for k, v in self._bids.items() if k[0] != agent_id}
        log.info("candles_resumed agent=%s bars=%d", agent_id, len(bars))

    async def tick(self, agent_id: str, tick: Tick) -> None:
        slot = (agent_id, tick.symbol)
        if self._bids.get(slot) == tick.bid:
            return
        self._bids[slot] = tick.bid
        for bar in self.book(agent_id).update(tick.symbol, tick.bid, tick.time):
            await self.publisher.candle(agent_id, bar, f"{bar.symbol}:{bar.tf}")
            self.submit(CandleRecord(agent_id=agent_id, **msgspec.structs.asdict(bar)))

    def current(self, agent_id: str, symbol: str, tf: Timeframe) -> Bar | None:
        book = self._books.get(agent_id)
        return None if book is None else book.current(symbol, tf)
