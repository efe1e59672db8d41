"""The fenced blocks of the Markdown docs, the runnable ones as a bash session, and the
comparison of an example's output with the output the doc shows.

A runnable block is a fenced block whose info string is ``sh runnable`` and may add:

- ``background``: the block runs in the background (a reader runs it in another
  terminal: ``make run``) and the session goes on;
- ``wait=URL[,URL…]``: after the block, wait (up to 120 s) until each URL answers 200.

A block right after a runnable block whose info string has the word ``output``
(```` ```json output ````) is what the commands print: the doc is wrong when the output
differs. ``…`` there matches any text; line breaks and the spaces that start lines do not
count (a long JSON answer may be wrapped).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Block", "blocks", "matches", "session_script"]

_FENCE = re.compile(r"^(?P<fence>```+)(?P<info>[^`]*)$")


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    info: list[str]
    text: str
    output: Block | None = field(default=None, repr=False)

    @property
    def lang(self) -> str:
        return self.info[0] if self.info else ""

    @property
    def runnable(self) -> bool:
        return "runnable" in self.info[1:]

    @property
    def is_output(self) -> bool:
        return "output" in self.info[1:]

    @property
    def background(self) -> bool:
        return "background" in self.info[1:]

    @property
    def waits(self) -> list[str]:
        urls = [w.removeprefix("wait=") for w in self.info if w.startswith("wait=")]
        return [u for w in urls for u in w.split(",")]

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"

    def commands(self) -> list[str]:
        """Its command lines: continuation lines joined, comments and blanks left out."""
        joined = re.sub(r"\s*\\\n\s*", " ", self.text)
        lines = (line.split(" #")[0].strip() for line in joined.splitlines())
        return [line for line in lines if line and not line.startswith("#")]


def blocks(path: Path, text: str | None = None) -> list[Block]:
    """Every fenced block of ``path`` (or of ``text``, named ``path``); an ``output`` block is
    attached to the block before it."""
    found: list[Block] = []
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, start, body = m["fence"], i, []
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i])
            i += 1
        block = Block(path, start + 1, m["info"].split(), "\n".join(body) + "\n")
        previous = found[-1] if found else None
        between = lines[_end_of(previous, lines) : start] if previous else []
        if block.is_output and previous is not None and not "".join(between).strip():
            previous.output = block
        else:
            found.append(block)
        i += 1
    return found


def _end_of(block: Block, lines: list[str]) -> int:
    """The index of the line after ``block``'s closing fence (or its output's)."""
    last = block.output or block
    return last.line + last.text.count("\n") + 1


def session_script(runnable: list[Block], out: Path) -> str:
    """One bash script running the blocks in order, as a reader's terminal would: shell
    state (variables, jobs) carries over; block ``i`` writes ``out/i.out``, and
    ``out/current`` names the block running. ``set -e``: the first failing command stops
    the session."""
    parts = ["set -e"]
    for i, block in enumerate(runnable):
        target = shlex.quote(str(out / f"{i}.out"))
        parts.append(f"echo {i} > {shlex.quote(str(out / 'current'))}")
        if block.background:
            parts.append(f"{{\n{block.text}}} > {target} 2>&1 &")
        else:
            parts.append(f"exec > {target} 2>&1\n{block.text}")
        for url in block.waits:
            parts.append(
                f"for _ in $(seq 600); do curl -sf -o /dev/null --max-time 2 {shlex.quote(url)}"
                f" && break; sleep 0.2; done; curl -sf -o /dev/null {shlex.quote(url)}"
                f" || {{ echo 'no answer from {url}' >&2; exit 97; }}"
            )
    parts.append(f"echo done > {shlex.quote(str(out / 'current'))}")
    return "\n".join(p for p in parts if p) + "\n"


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is what ``expected`` shows (see the module docstring)."""
    pattern = "".join(line.strip() for line in expected.splitlines())
    text = "".join(line.strip() for line in actual.splitlines())
    regex = ".*?".join(re.escape(part) for part in pattern.split("…"))
    return re.fullmatch(regex, text, re.DOTALL) is not None
