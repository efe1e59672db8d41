"""How the docs test reads Markdown: runnable blocks, their output blocks, the `…` wildcard."""

from __future__ import annotations

from pathlib import Path

from tests.docs.blocks import blocks, matches, session_script

DOC = """Text.

```sh runnable wait=http://a/health,http://b/health
curl -s http://a/x \\
  -d '{}'   # a comment
```

```json output
{"a":1,
 "b":…}
```

Prose.

```json output
{"orphan":true}
```
"""


def test_an_output_block_belongs_to_the_block_right_before_it() -> None:
    first, orphan = blocks(Path("doc.md"), DOC)
    assert first.runnable and first.waits == ["http://a/health", "http://b/health"]
    assert first.output is not None and first.output.text.startswith('{"a":1')
    assert first.commands() == ["curl -s http://a/x -d '{}'"]
    assert orphan.is_output and orphan.where == "doc.md:15"


def test_the_ellipsis_matches_anything_and_line_breaks_do_not_count() -> None:
    assert matches('{"a":1,\n "b":…}', '{"a":1,"b":{"c":[2]}}\n')
    assert matches("x…\n…z", "x\ny\nz")
    assert not matches('{"a":1}', '{"a":2}')
    assert not matches("ok", "ok\nand more")


def test_the_session_stops_at_the_first_failing_command(tmp_path: Path) -> None:
    script = session_script(blocks(Path("d.md"), "```sh runnable\nfalse\n```\n"), tmp_path)
    assert script.startswith("set -e\n")
