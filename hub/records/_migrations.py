"""Numbered SQL migration files shipped in ``hub/records/migrations/<engine>/``.

A file is ``NNNN_name.sql``; each is applied once, in one transaction, and
recorded in ``schema_migrations`` by the engine's store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

__all__ = ["Migration", "load_migrations"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(engine: Literal["sqlite", "postgres"]) -> list[Migration]:
    """The engine's migrations in version order; a misnamed or repeated file is an error."""
    folder = resources.files("hub.records") / "migrations" / engine
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise RuntimeError(f"migration file {engine}/{entry.name}: name must be NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise RuntimeError(f"migration {engine}/{entry.name}: version {version} is repeated")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]
