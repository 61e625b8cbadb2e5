"""Every pooled SQLite connection is set up the same way: WAL, durable commits, checks and checkpoints."""

from __future__ import annotations

from pathlib import Path

from hearth.storage.db import SQLITE_WAL_AUTOCHECKPOINT_PAGES, Database

_NAMES = ("journal_mode", "synchronous", "foreign_keys", "busy_timeout", "wal_autocheckpoint")


async def test_pooled_connections_get_the_server_settings(tmp_path: Path) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'settings.db'}", pool_size=2)
    try:
        async with db.write() as conn:
            settings = await conn.run_sync(lambda c: {
                name: c.connection.driver_connection.execute(f"PRAGMA {name}").fetchone()[0]
                for name in _NAMES
            })
    finally:
        await db.close()
    assert settings == {
        "journal_mode": "wal", "synchronous": 1, "foreign_keys": 1, "busy_timeout": 5000,
        "wal_autocheckpoint": SQLITE_WAL_AUTOCHECKPOINT_PAGES,
    }
    assert SQLITE_WAL_AUTOCHECKPOINT_PAGES == 10_000
