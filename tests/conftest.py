"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

The PostgreSQL cluster starts once per test session; each test gets a fresh
database copied from a migrated template (fast), and each SQLite test a fresh
copy of a migrated file. In CI (CI=true) a missing PostgreSQL fails the run
instead of skipping.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from hearth.app import build_app
from hearth.config import HearthConfig
from hearth.homeserver import Homeserver
from hearth.storage.migrations import upgrade_database
from tests.helpers.clients import ClientFactory
from tests.helpers.clock import FakeClock
from tests.helpers.homeserver import MatrixTestClient, make_config
from tests.helpers.postgres import PostgresCluster, find_pg_bin

ENGINES = ["sqlite", "postgres"]
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster | None]:
    if find_pg_bin() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is required in CI but its binaries were not found")
        yield None
        return
    cluster = PostgresCluster.start()
    _psql(cluster, "CREATE DATABASE hearth_template")
    asyncio.run(_migrate(cluster.url("hearth_template")))
    yield cluster
    cluster.stop()


def _psql(cluster: PostgresCluster, sql: str) -> None:
    subprocess.run(
        [str(cluster.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
         "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        check=True, capture_output=True,
    )


async def _migrate(url: str) -> None:
    await upgrade_database(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(_migrate(f"sqlite:///{path}"))
    return path


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    """A fresh, migrated database on each engine."""
    if request.param == "sqlite":
        path = tmp_path / "hearth.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    cluster: PostgresCluster | None = request.getfixturevalue("pg_cluster")
    if cluster is None:
        pytest.skip("PostgreSQL binaries not installed (they are required in CI)")
    name = f"hearth_test_{os.getpid()}_{next(_counter)}"
    _psql(cluster, f"CREATE DATABASE {name} TEMPLATE hearth_template")
    yield cluster.url(name)
    _psql(cluster, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hs_config(tmp_path: Path, database_url: str) -> HearthConfig:
    return make_config(tmp_path, database_url)


@pytest.fixture
async def hs(hs_config: HearthConfig, fake_clock: FakeClock) -> AsyncIterator[Homeserver]:
    server = await Homeserver.start(hs_config, clock=fake_clock)
    yield server
    await server.close()


@pytest.fixture
async def client(hs: Homeserver, aiohttp_client: AiohttpClient) -> MatrixTestClient:
    return MatrixTestClient(await aiohttp_client(build_app(hs)), hs)


@pytest.fixture
async def make_client(aiohttp_client: AiohttpClient, tmp_path: Path, database_url: str,
                      fake_clock: FakeClock) -> AsyncIterator[ClientFactory]:
    """`await make_client(**overrides)`: a client of a server so configured; all share the database."""
    factory = ClientFactory(aiohttp_client, tmp_path, database_url, fake_clock)
    yield factory
    await factory.close()
