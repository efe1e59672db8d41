"""``mt4hub tail`` as an operator runs it: a clear error and exit 1 when it cannot follow the
hub (nothing listening, a wrong token), and a quiet end when its reader goes (``| head``)."""

from __future__ import annotations

import asyncio
import sys
import time

from tests.hubkit import free_port, run_hub
from tests.timing import units

TAIL = [sys.executable, "-m", "hub.cli", "tail"]


async def _run(*args: str, within: float) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(within):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"still running after {within:g} s; stderr so far: {err.decode()!r}"
        ) from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_no_hub_at_the_url_is_an_error_within_seconds() -> None:
    url = f"ws://127.0.0.1:{free_port()}/ws"
    started = time.monotonic()
    code, out, err = await _run(*TAIL, "summary", "--url", url, "--token", "x" * 32, within=20)
    assert code == 1, (code, err)
    assert out == ""
    assert err.startswith(f"mt4hub tail: cannot connect to {url}"), err
    assert "Traceback" not in err
    assert time.monotonic() - started < 15


async def test_a_wrong_token_is_an_error_at_once() -> None:
    async with run_hub() as hub:
        code, out, err = await _run(
            *TAIL, "summary", "--url", hub.ws_url, "--token", "wrong-" * 6, within=units(150)
        )
    assert code == 1, (code, err)
    assert out == ""
    assert err.strip() == (
        f"mt4hub tail: {hub.ws_url} refused the token: unauthorized: invalid or expired token"
    )


async def test_a_closed_pipe_ends_tail_quietly() -> None:
    async with run_hub() as hub:
        script = (
            "set -o pipefail; "
            f"{sys.executable} -m hub.cli tail 'agent:agent_1:ticks' --url {hub.ws_url} "
            f"--token {hub.token} | head -n 2"
        )
        code, out, err = await _run("bash", "-c", script, within=units(150))
    assert len(out.splitlines()) == 2
    assert '"ch":"agent:agent_1:ticks"' in out
    assert err == "", err
    assert code == 0
