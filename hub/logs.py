"""Structured logs: one line per event, ``time level logger event key=value ...``.

Every record, ours or any library's (uvicorn, aiohttp…), goes through :class:`LineFormatter`,
the one place that makes a line safe to write, so call sites log plain values:

- secrets are masked whatever their encoding: the value of any ``key=value`` whose key
  decodes to something ending in ``token`` (``token=``, ``%74oken=``, ``%2574oken=``…),
  ``Bearer …``, anything shaped like a JWT, and the hub's own secrets (``secrets``) written
  plainly or percent-encoded in part or whole, once or more;
- control characters (``\\n``, ``\\r``, NEL, U+2028…) are escaped, so nothing a client
  sends (a path with ``%0a``, a ``signal_id`` with a newline) can start a line of its own.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterable
from urllib.parse import unquote_plus

__all__ = ["LineFormatter", "mask", "setup_logging"]

_PAIR_RE = re.compile(r"([^\s?&=;\"'<>]+)=([^&\s\"';<>]*)")
_BEARER_RE = re.compile(r"(bearer\s+)[A-Za-z0-9._~+/=%-]+", re.IGNORECASE)
_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_%-]+\.[A-Za-z0-9_%-]+\.[A-Za-z0-9_%-]*")
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MASK = "***"


def _decoded(text: str) -> str:
    """``text`` percent-decoded until nothing changes (``%2574`` → ``%74`` → ``t``)."""
    for _ in range(8):
        plain = unquote_plus(text)
        if plain == text:
            break
        text = plain
    return text


def _mask_pair(match: re.Match[str]) -> str:
    key = match.group(1)
    return f"{key}={_MASK}" if _decoded(key).lower().endswith("token") else match.group(0)


def _any_encoding(secret: str) -> re.Pattern[str]:
    """A pattern for ``secret`` with any of its characters percent-encoded, any number of
    times (``%74``, ``%2574``…), hex digits in either case."""
    parts = []
    for char in secret:
        codes = "".join(f"%{b:02x}" for b in char.encode())
        encoded = "".join(f"(?:%25)*%{c[1:]}" for c in re.findall("%..", codes))
        parts.append(f"(?:{re.escape(char)}|{encoded})")
    return re.compile("".join(parts), re.IGNORECASE)


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    escaped = _ESCAPES.get(char)
    if escaped is not None:
        return escaped
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def mask(text: str, secrets: Iterable[re.Pattern[str]] = ()) -> str:
    """``text`` with every secret masked (see the module docstring)."""
    text = _PAIR_RE.sub(_mask_pair, text)
    text = _BEARER_RE.sub(rf"\1{_MASK}", text)
    text = _JWT_RE.sub(_MASK, text)
    for secret in secrets:
        text = secret.sub(_MASK, text)
    return text


class LineFormatter(logging.Formatter):
    """One line per record, secrets masked and control characters escaped."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = [_any_encoding(s) for s in secrets if s]

    def _safe(self, text: str) -> str:
        return _CONTROL_RE.sub(_escape, mask(text, self._secrets))

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = f"{stamp}.{int(record.msecs):03d}Z {record.levelname} {record.name} "
        line += self._safe(record.getMessage())
        if record.exc_info:
            # The traceback stays on one line so a log shipper keeps it with its event.
            line += " exc=" + self._safe(repr(self.formatException(record.exc_info)))
        return line


def setup_logging(level: str | None = None, secrets: Iterable[str] = ()) -> None:
    """Every logger to stderr through :class:`LineFormatter`; ``secrets``: values to mask
    wherever they appear (the hub's tokens and JWT secret)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("HUB_LOG_LEVEL", "INFO"))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
