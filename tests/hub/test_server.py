"""uvicorn as the hub runs it (hub/server.py): no connection may hold a slot by saying
nothing, half a header, or nothing more after a response; past max_concurrency, 503."""

from __future__ import annotations

import asyncio

from tests.hubkit import hub_config, run_hub
from tests.timing import units


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True when the server closes the connection (EOF) within ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    return True


async def test_silent_half_header_and_idle_connections_are_closed() -> None:
    cfg = hub_config("server: {header_timeout: 0.5, idle_timeout: 1}\n")
    async with run_hub(cfg) as h:
        silent_r, silent_w = await asyncio.open_connection("127.0.0.1", h.port)
        half_r, half_w = await asyncio.open_connection("127.0.0.1", h.port)
        half_w.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        idle_r, idle_w = await asyncio.open_connection("127.0.0.1", h.port)
        idle_w.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await idle_r.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
        started = asyncio.get_running_loop().time()
        for reader in (silent_r, half_r, idle_r):
            assert await closed_by_server(reader, units(30))
        assert asyncio.get_running_loop().time() - started < units(30)
        for writer in (silent_w, half_w, idle_w):
            writer.close()
        assert (await h.http.get("/health")).status_code == 200  # others still served


async def test_past_max_concurrency_the_answer_is_503() -> None:
    async with run_hub(hub_config("server: {max_concurrency: 2}\n")) as h:
        held = [await asyncio.open_connection("127.0.0.1", h.port) for _ in range(2)]
        await asyncio.sleep(units(1))
        reader, writer = await asyncio.open_connection("127.0.0.1", h.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await reader.readuntil(b"\r\n")).startswith(b"HTTP/1.1 503")
        for _, w in [*held, (reader, writer)]:
            w.close()
        await asyncio.sleep(units(1))
        assert (await h.http.get("/health")).status_code == 200
