"""Errors of the records package.

```
RecordsError
├── StoreConfigError   bad DATABASE_URL (names the variable)
├── StoreUnavailable   the database can't be reached right now: retry, spool meanwhile
├── StoreDataError     the database refused a record (a constraint, a bad value)
├── QueryError         a bad query parameter (names it: ``limit: must be 1..1000``)
└── SpoolError         the spool directory is unusable
    └── SpoolInUse     another process holds the spool (two hubs with one data dir)
```
"""

from __future__ import annotations

__all__ = [
    "QueryError",
    "RecordsError",
    "SpoolError",
    "SpoolInUse",
    "StoreConfigError",
    "StoreDataError",
    "StoreUnavailable",
]


class RecordsError(Exception):
    """Base of every error raised by :mod:`hub.records`."""


class StoreConfigError(RecordsError, ValueError):
    """The database URL is not one we can use."""


class StoreUnavailable(RecordsError):
    """The database is unreachable (connection refused, lost, timed out, shutting down)."""


class StoreDataError(RecordsError):
    """The database refused the data itself; retrying the same record won't help."""


class QueryError(RecordsError, ValueError):
    """A query parameter is out of range; the message names the parameter."""


class SpoolError(RecordsError):
    """The spool directory can't be used."""


class SpoolInUse(SpoolError):
    """Another process holds the spool directory's lock."""
