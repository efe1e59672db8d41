"""Shared fixtures: stores on both engines and throwaway Postgres clusters.

Postgres comes from ``TEST_DATABASE_URL`` (``make test`` starts a throwaway
cluster with ``scripts/services.sh`` and sets it). Each test gets its own fresh
database there, so tests never see each other's rows. When the variable is unset
the Postgres tests skip, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from hub.records import Store, open_store
from tests.hub.records.helpers import PG_BIN, run_services
from tests.rediskit import RedisServer, require_redis_server

HOW_TO = (
    "run the test command (make test), which starts a throwaway Postgres, or: "
    "scripts/services.sh start .services && . .services/env"
)


def _require(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}: CI must run the Postgres tests")
    pytest.skip(f"{what}: {HOW_TO}")


@pytest.fixture
def pg_admin_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        _require("TEST_DATABASE_URL is not set")
    assert url is not None
    return url


@pytest.fixture
async def pg_url(pg_admin_url: str) -> AsyncIterator[str]:
    """A fresh, empty database on the test cluster, dropped afterwards."""
    name = f"mt4hub_t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_admin_url, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(pg_admin_url)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    admin = await asyncpg.connect(pg_admin_url, timeout=10)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL on each engine (a fresh file, a fresh database)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'mt4hub.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """An opened (migrated) store on each engine."""
    s = open_store(store_url)
    await s.open()
    yield s
    await s.close()


@pytest.fixture
def private_pg(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A private Postgres cluster (services.sh), for tests that stop and restart it."""
    if not (PG_BIN / "initdb").exists() and os.geteuid() != 0:
        _require(f"no Postgres binaries in {PG_BIN}")
    svc = tmp_path / "services"
    run_services("start", svc, "postgres")
    try:
        env = (svc / "env").read_text()
        url = env.split("TEST_DATABASE_URL=", 1)[1].split()[0]
        yield url, svc
    finally:
        run_services("stop", svc, "postgres")


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """TEST_REDIS_URL when set, else a private redis-server for the whole session."""
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    server = RedisServer(require_redis_server(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.kill()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, for tests that kill and restart it."""
    server = RedisServer(require_redis_server(), tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()
