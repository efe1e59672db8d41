"""The docs work as written: every runnable shell block of README.md and docs/*.md runs, in
order, on a fresh machine, and prints what the doc shows (tests/docs/blocks.py says how
blocks are marked). Every other shell block's commands are run by another test, named in
RUN_ELSEWHERE; files the docs show in full are the shipped files.

Each doc is a session of its own in a private network namespace (tests/machinekit.py) with
Redis on 6379 and PostgreSQL on 5432, so the documented ports are used as written, in a
working copy of this checkout whose PATH has no .venv (a new operator's shell; curl shows
no progress meter, as on a terminal). Every doc but docs/deploy.md, which sets up and starts
its own hubs, runs against the hub that `make run` starts (Quick start), with
``HUB_ADMIN_TOKEN`` and ``T`` set to one token, as the README has the reader do.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.blocks import Block, blocks, matches, session_script
from tests.machinekit import ROOT, checkout, fresh_machine

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = {"sh", "bash", "shell", "console"}
TOKEN = "docs-test-admin-token-0123456789"  # 32 characters, like deploy/make-env.sh makes

# The hub the docs without a `make run` of their own talk to (the README's, started alike).
MAKE_RUN = """```sh runnable background wait=http://127.0.0.1:8090/health
make run
```
"""

# Commands of shell blocks that are not runnable, each with what runs it: system changes
# the docs test cannot make on a shared machine, and the command that runs this test.
_SYSTEM = "a system change; its files are run by "
RUN_ELSEWHERE = {
    "make run": "every session but docs/deploy.md's starts with it (MAKE_RUN)",
    "make test": ".ci/run runs it (the suite this test is part of)",
    "make cluster": "tests/deploy/test_cluster.py",
    "make cluster-stop": "tests/deploy/test_cluster.py",
    "apt-get install -y python3-venv redis-server postgresql nginx openssl": (
        "installed on the test machine; scripts/services.sh and deploy/cluster.sh install "
        "what is missing with scripts/apt-install.sh"
    ),
    "deploy/make-cert.sh /etc/nginx/tls hub.example.com": _SYSTEM + "tests/deploy/test_files.py",
    "cp deploy/nginx/mt4hub.conf /etc/nginx/sites-available/mt4hub": (
        _SYSTEM + "tests/deploy/test_files.py (nginx -t) and deploy/cluster.sh"
    ),
    "ln -s /etc/nginx/sites-available/mt4hub /etc/nginx/sites-enabled/mt4hub": (
        _SYSTEM + "tests/deploy/test_files.py"
    ),
    "nginx -t && systemctl reload nginx": _SYSTEM + "tests/deploy/test_files.py",
    "adduser --system --group --home /var/lib/mt4hub mt4hub": (
        _SYSTEM + "tests/deploy/test_process_managers.py (in a temp dir)"
    ),
    "install -d -o mt4hub -g mt4hub /var/lib/mt4hub /var/log/mt4hub /etc/mt4hub": (
        _SYSTEM + "tests/deploy/test_process_managers.py (in a temp dir)"
    ),
    "install -m 600 -o mt4hub .env /etc/mt4hub/mt4hub.env": (
        _SYSTEM + "tests/deploy/test_process_managers.py (in a temp dir)"
    ),
    "install -m 644 prod.yml /etc/mt4hub/prod.yml": (
        _SYSTEM + "tests/deploy/test_process_managers.py (in a temp dir)"
    ),
    "apt-get install -y supervisor": _SYSTEM + "tests/deploy/test_process_managers.py",
    "cp deploy/supervisor/mt4hub.conf /etc/supervisor/conf.d/": (
        _SYSTEM + "tests/deploy/test_process_managers.py"
    ),
    "supervisorctl update": _SYSTEM + "tests/deploy/test_process_managers.py",
    "cp deploy/systemd/mt4hub@.service deploy/systemd/mt4hub-sim@.service /etc/systemd/system/": (
        _SYSTEM + "tests/deploy/test_files.py (systemd-analyze verify)"
    ),
    "systemctl daemon-reload": _SYSTEM + "tests/deploy/test_files.py (systemd-analyze verify)",
    "systemctl enable --now mt4hub@8090 mt4hub@8091": (
        _SYSTEM + "tests/deploy/test_files.py (systemd-analyze verify)"
    ),
}

# Files the docs show in full (doc#language of the block), and the shipped file each is.
SHOWN_FILES = {
    "docs/deploy.md#nginx": ROOT / "deploy" / "nginx" / "mt4hub.conf",
    "docs/deploy.md#": ROOT / "Procfile",
}


def _shell_blocks() -> list[Block]:
    return [b for doc in DOCS for b in blocks(doc) if b.lang in SHELLS]


def test_every_shell_block_is_runnable_or_run_by_another_test() -> None:
    missing = [
        f"{b.where}: {command}"
        for b in _shell_blocks()
        if not b.runnable
        for command in b.commands()
        if command not in RUN_ELSEWHERE
    ]
    assert missing == [], "mark these blocks runnable, or name the test that runs them"


def test_every_output_block_follows_a_runnable_block() -> None:
    """An output block after prose, or after a block that is not run, would be checked
    against nothing."""
    orphans = [b.where for doc in DOCS for b in blocks(doc) if b.is_output]
    orphans += [b.output.where for doc in DOCS for b in blocks(doc) if b.output and not b.runnable]
    assert orphans == []


@pytest.mark.parametrize(("shown", "file"), sorted(SHOWN_FILES.items()))
def test_files_shown_in_the_docs_are_the_shipped_ones(shown: str, file: Path) -> None:
    where, _, lang = shown.partition("#")
    doc = [b for b in blocks(ROOT / where) if b.lang == lang]
    assert [b.text for b in doc].count(file.read_text()) == 1, f"{where}: {file} differs"


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Outside pytest's private tmp: the postgres user must be able to enter it."""
    path = Path(tempfile.mkdtemp(prefix="mt4hub-docs-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _session(doc: Path) -> tuple[list[Block], dict[str, str]]:
    """The blocks a session runs, and what its shell has set before them."""
    runnable = [b for b in blocks(doc) if b.runnable]
    if doc.name == "deploy.md":  # it sets up and starts its own hubs
        return runnable, {}
    prelude = [b for b in blocks(Path("MAKE_RUN"), MAKE_RUN) if b.runnable]
    return prelude + runnable, {"HUB_ADMIN_TOKEN": TOKEN, "T": TOKEN}


RUNNABLE_DOCS = [doc for doc in DOCS if any(b.runnable for b in blocks(doc))]


@pytest.mark.parametrize("doc", RUNNABLE_DOCS, ids=lambda d: d.name)
def test_the_doc_runs_as_written(doc: Path, workdir: Path) -> None:
    runnable, env = _session(doc)
    out = workdir / "out"
    out.mkdir()
    work = checkout(workdir / "checkout")
    script = workdir / "session.sh"
    script.write_text(session_script(runnable, out))
    with fresh_machine(workdir / "machine") as machine:
        ran = machine.run(f"bash {script}", cwd=work, env=env, timeout=600)
        _report(runnable, out, ran.returncode, ran.stdout)


def _report(runnable: list[Block], out: Path, code: int, text: str) -> None:
    current = (out / "current").read_text().strip() if (out / "current").exists() else "?"

    def output(i: int) -> str:
        path = out / f"{i}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    if current != "done" or code != 0:
        if not current.isdigit():
            raise AssertionError(f"the session stopped before its first block:\n{text}")
        block = runnable[int(current)]
        raise AssertionError(
            f"the session stopped in the block at {block.where} (exit {code}):\n"
            f"{block.text}\n--- its output:\n{output(int(current))}"
        )
    wrong = [
        f"{b.where} prints:\n{output(i)}\n--- but the doc shows ({b.output.where}):\n"
        + b.output.text
        for i, b in enumerate(runnable)
        if b.output is not None and not matches(b.output.text, output(i))
    ]
    assert not wrong, "\n\n".join(wrong)
