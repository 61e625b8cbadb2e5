"""Alembic revisions for the schema in `hearth.storage.tables`.

`upgrade_database(url)` is what `hearth db upgrade` and `hearth serve` call. The
revisions create tables with explicit operations (not `metadata.create_all`) so
that an old database is walked forward one reviewed step at a time.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

from hearth.storage.db import Database

_HERE = Path(__file__).parent


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    return cfg


def _upgrade(sync_conn: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


async def upgrade_database(url: str) -> None:
    """Apply every pending migration; a no-op on an up-to-date database."""
    db = Database.unpooled(url)
    try:
        async with db.write() as conn:
            await conn.run_sync(_upgrade)
    finally:
        await db.close()
