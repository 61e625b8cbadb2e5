"""`upgrade_database` skips Alembic only when the database is already at head.

The fast path must never skip real work: a fresh database still gets the whole
schema, an outdated one is still walked forward, and a database from a newer
Hearth still fails as Alembic makes it fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, text

from hearth.storage.db import Database
from hearth.storage.migrations import alembic_config, head_revision, upgrade_database
from tests.helpers.postgres import PostgresCluster

REPO = Path(__file__).resolve().parents[2]
_names = count()


def _psql(cluster: PostgresCluster, sql: str) -> None:
    subprocess.run(
        [str(cluster.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres",
         "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        check=True, capture_output=True,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all, on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    cluster: PostgresCluster | None = request.getfixturevalue("pg_cluster")
    if cluster is None:
        pytest.skip("PostgreSQL binaries not installed (they are required in CI)")
    name = f"hearth_empty_{os.getpid()}_{next(_names)}"
    _psql(cluster, f"CREATE DATABASE {name}")
    yield cluster.url(name)
    _psql(cluster, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _alembic_head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


async def _tables_and_version(url: str) -> tuple[set[str], list[str]]:
    def read(conn: Connection) -> tuple[set[str], list[str]]:
        tables = set(inspect(conn).get_table_names())
        versions = [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
        return tables, versions

    db = Database.unpooled(url)
    try:
        async with db.read() as conn:
            return await conn.run_sync(read)
    finally:
        await db.close()


async def _run_alembic(url: str, action: str, revision: str) -> None:
    def run(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, revision)

    db = Database.unpooled(url)
    try:
        async with db.write() as conn:
            await conn.run_sync(run)
    finally:
        await db.close()


def test_head_read_from_files_matches_alembic() -> None:
    assert head_revision() == _alembic_head()


async def test_fresh_database_is_migrated_to_head(empty_database_url: str) -> None:
    await upgrade_database(empty_database_url)
    tables, versions = await _tables_and_version(empty_database_url)
    assert versions == [_alembic_head()]
    assert {"users", "devices", "access_tokens", "events", "rooms"} <= tables


async def test_outdated_database_is_upgraded(empty_database_url: str) -> None:
    # Walk a fresh database to the first revision only, then let the server's
    # upgrade finish the job: the later revisions' tables must appear.
    await _run_alembic(empty_database_url, "upgrade", "0001")
    tables, versions = await _tables_and_version(empty_database_url)
    assert versions == ["0001"] and "events" not in tables
    await upgrade_database(empty_database_url)
    tables, versions = await _tables_and_version(empty_database_url)
    assert versions == [_alembic_head()]
    assert {"events", "rooms", "receipts"} <= tables


async def test_database_from_a_newer_hearth_still_fails(database_url: str) -> None:
    db = Database.unpooled(database_url)
    try:
        async with db.write() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    finally:
        await db.close()
    with pytest.raises(CommandError):
        await upgrade_database(database_url)


def test_database_at_head_does_not_load_alembic(database_url: str) -> None:
    # In a fresh interpreter, so modules imported by this test session don't count.
    script = (
        "import asyncio, sys\n"
        "from hearth.storage.migrations import upgrade_database\n"
        f"asyncio.run(upgrade_database({database_url!r}))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
