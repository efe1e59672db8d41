"""One wording for msgspec validation errors: ``path: problem``, shared by every surface.

The socket, REST bodies, the config file and the simulator's bodies all decode with
msgspec; :func:`describe` turns its ``Expected `int` >= 1 - at `$.risk.max_positions```
into ``risk.max_positions: must be >= 1`` so that the same mistake reads the same
everywhere (``noun`` is ``field`` for messages, ``key`` for the config file).
"""

from __future__ import annotations

import re

__all__ = ["describe", "join_path"]

_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_BOUND = re.compile(r"^Expected `\w+` (?P<op>[<>]=?) (?P<num>-?[\d.e+-]+)$")
_LENGTH = re.compile(r"^Expected `(?:array|str|object)` of length (?P<op>[<>]=?) (?P<num>\d+)$")
_REGEX = re.compile(r"^Expected `str` matching regex (?P<regex>.+)$")
_GOT = re.compile(r"^Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`$")
_FIELD = re.compile(r"^Object (?P<kind>missing required|contains unknown) field `(?P<name>[^`]+)`$")
_VALUE = re.compile(r"^Invalid (?:enum )?value (?P<value>.+)$", re.DOTALL)


def describe(error: Exception | str, *, prefix: str = "", noun: str = "field") -> str:
    """``path: problem`` for a msgspec ``ValidationError`` (or its text).

    ``prefix`` is prepended to the path (the config section the value came from)."""
    found = _AT.match(str(error))
    assert found is not None  # the pattern matches any string
    what, path = found["what"], join_path(prefix, (found["path"] or "").lstrip("."))
    if m := _FIELD.match(what):
        name = join_path(path, m["name"])
        missing = m["kind"] == "missing required"
        return f"{name}: required {noun} missing" if missing else f"{name}: unknown {noun}"
    if m := _BOUND.match(what):
        problem = f"must be {m['op']} {_number(m['num'])}"
    elif m := _LENGTH.match(what):
        problem = f"length must be {m['op']} {m['num']}"
    elif m := _REGEX.match(what):
        problem = f"must match {m['regex']}"
    elif m := _GOT.match(what):
        problem = f"expected {m['want']}, got {m['got']}"
    elif m := _VALUE.match(what):
        problem = f"invalid value {m['value']}"
    else:
        problem = what[:1].lower() + what[1:]
    return f"{path}: {problem}" if path else problem


def join_path(a: str, b: str) -> str:
    """``agents.agent_1`` + ``risk`` → ``agents.agent_1.risk``; list indexes attach directly."""
    if not a:
        return b
    if not b:
        return a
    return a + b if b.startswith("[") else f"{a}.{b}"


def _number(text: str) -> str:
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else text
