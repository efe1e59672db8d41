"""The store: one interface, two engines (SQLite by default, Postgres via asyncpg).

:func:`open_store` picks the engine from ``DATABASE_URL``: unset or ``sqlite:///path``
is SQLite (a file, default ``data/mt4hub.db``; ``sqlite:////abs/path`` for an
absolute one), ``postgresql://...`` is Postgres (schema ``trading``). Both have the
same tables, apply the same numbered migrations at :meth:`Store.open`, and write a
batch of records in one transaction, idempotently (see :mod:`hub.records.records`).

Connection trouble raises :class:`~hub.records.errors.StoreUnavailable` from any
call; the store reconnects by itself on the next one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlsplit

from hub.records.errors import StoreConfigError
from hub.records.records import Record
from hub.records.rows import CandleRow, EquityRow, LogRow, SignalRow, TickRow, TradeRow

__all__ = ["DEFAULT_SQLITE_PATH", "TABLES", "Store", "open_store"]

DEFAULT_SQLITE_PATH = Path("data/mt4hub.db")
TABLES = ("agent_trades", "agent_logs", "signals", "equity_snapshots", "ticks", "candles")


class Store(Protocol):
    """What the writer and the REST layer use; implemented by both engines."""

    @property
    def engine(self) -> Literal["sqlite", "postgres"]: ...

    async def open(self) -> None:
        """Connect and apply pending migrations (idempotent; also done lazily)."""

    async def close(self) -> None: ...

    async def migrate(self) -> list[int]:
        """Apply pending migrations, each in one transaction; the versions applied."""

    async def write(self, records: Sequence[Record]) -> None:
        """Write a batch in one transaction; records already written change nothing."""

    async def trades(
        self,
        *,
        agent: str | None = None,
        limit: int = 100,
        before: int | None = None,
        signal_id: str | None = None,
        status: str | None = None,
    ) -> list[TradeRow]:
        """Trades newest first; ``before`` is the id cursor of the previous page."""

    async def logs(
        self,
        *,
        agent: str | None = None,
        limit: int = 100,
        before: int | None = None,
        event_type: str | None = None,
    ) -> list[LogRow]:
        """Log rows newest first."""

    async def signals(
        self, *, agent: str | None = None, limit: int = 100, before: int | None = None
    ) -> list[SignalRow]:
        """Signals newest first; ``agent`` keeps those routed to it (``outcome.routes``)."""

    async def equity(
        self, agent: str, *, since_ms: int | None = None, limit: int = 1000
    ) -> list[EquityRow]:
        """An agent's equity snapshots oldest first, from ``since_ms`` on."""

    async def ticks(
        self,
        agent: str,
        *,
        symbol: str | None = None,
        since_ms: int | None = None,
        limit: int = 1000,
    ) -> list[TickRow]:
        """An agent's ticks oldest first, from ``since_ms`` on."""

    async def candles(
        self, agent: str, symbol: str, tf: str, *, limit: int = 500, before: int | None = None
    ) -> list[CandleRow]:
        """The newest ``limit`` bars opened before ``before`` (epoch ms), oldest first."""

    async def last_candles(self, agent: str) -> list[CandleRow]:
        """The newest stored bar of each of the agent's symbols and timeframes."""

    async def count(self, table: str) -> int:
        """Rows in one of :data:`TABLES`."""


def open_store(url: str | None = None, *, default_path: Path = DEFAULT_SQLITE_PATH) -> Store:
    """The store for ``DATABASE_URL`` (not connected yet: call :meth:`Store.open`)."""
    if not url:
        from hub.records.sqlite import SqliteStore

        return SqliteStore(default_path)
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
        if not path:
            raise StoreConfigError(
                "DATABASE_URL: a SQLite URL needs a file path: sqlite:///data/mt4hub.db"
            )
        from hub.records.sqlite import SqliteStore

        return SqliteStore(Path(path))
    if scheme in ("postgresql", "postgres"):
        from hub.records.postgres import PostgresStore

        return PostgresStore(url)
    raise StoreConfigError(
        f"DATABASE_URL: unsupported scheme {scheme!r}: use postgresql://... or sqlite:///path"
    )
