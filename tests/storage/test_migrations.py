"""The Alembic revisions build exactly the schema that `tables.py` describes."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, text

from hearth.storage.db import Database
from hearth.storage.migrations import upgrade_database
from hearth.storage.tables import in_schema_comparison, metadata


def _diff(sync_conn: Connection) -> list[object]:
    opts = {"compare_type": True, "include_name": in_schema_comparison}
    ctx = MigrationContext.configure(sync_conn, opts=opts)
    return list(compare_metadata(ctx, metadata))


async def test_migrated_schema_matches_tables(database_url: str) -> None:
    db = Database.unpooled(database_url)
    try:
        async with db.read() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await db.close()
    assert diff == []


async def test_upgrade_is_idempotent(database_url: str) -> None:
    # The fixture database is already at head; upgrading again changes nothing.
    await upgrade_database(database_url)
    await upgrade_database(database_url)


# PostgreSQL's GIN index has no such setting.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_full_text_index_merges_in_groups_of_16(database_url: str) -> None:
    """Each send is a transaction and writes an FTS5 segment; merging 16 at a time keeps sends cheap."""
    db = Database.unpooled(database_url)
    try:
        async with db.read() as conn:
            rows = await conn.execute(text("SELECT v FROM event_search_fts_config WHERE k = 'automerge'"))
            assert [tuple(r) for r in rows] == [(16,)]
    finally:
        await db.close()
