"""Structured logs: one line per event, ``time level logger event key=value ...``, no secrets."""

from __future__ import annotations

import logging
import os
import re
import sys
import time

__all__ = ["LineFormatter", "redact", "setup_logging"]

_TOKEN_RE = re.compile(r"(token=)[^&\s\"']+", re.IGNORECASE)
_BEARER_RE = re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide token values in a query string or an Authorization header."""
    return _BEARER_RE.sub(r"\1***", _TOKEN_RE.sub(r"\1***", text))


class LineFormatter(logging.Formatter):
    """One line per record, tokens redacted (applied to every message, any library)."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = f"{stamp}.{int(record.msecs):03d}Z {record.levelname} {record.name} "
        line += redact(record.getMessage())
        if record.exc_info:
            # The traceback stays on one line so a log shipper keeps it with its event.
            line += " exc=" + repr(self.formatException(record.exc_info))
        return line


def setup_logging(level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("HUB_LOG_LEVEL", "INFO"))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
