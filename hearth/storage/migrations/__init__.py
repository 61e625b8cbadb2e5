"""Alembic revisions for the schema in `hearth.storage.tables`.

`upgrade_database(url)` is what `hearth db upgrade` and `hearth serve` call. The
revisions create tables with explicit operations (not `metadata.create_all`) so
that an old database is walked forward one reviewed step at a time.

Fast path: almost every start finds the database already at head, and loading
Alembic only to learn that cost about a third of `hearth serve`'s start time
(Alembic, Mako and Pygments imports plus parsing every revision file: ~0.3 s
of CPU and ~9 MiB of resident memory that stayed for the life of the process).
So `upgrade_database` first compares the `alembic_version` row with the head
revision read from the revision files' own `revision = ...` lines, and imports
Alembic only when they differ (fresh, outdated or unknown database). A test
checks that this reading agrees with Alembic's own revision map.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from hearth.storage.db import Database

if TYPE_CHECKING:
    from alembic.config import Config

_HERE = Path(__file__).parent
_VERSION_TABLE = "alembic_version"
_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"""["']([^"']+)["']""")


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    return cfg


def head_revision() -> str | None:
    """The single head of the revision files, or None when it cannot be told cheaply.

    Reads each file's `revision` / `down_revision` assignments as text. None
    (for a file it cannot read, several heads, a merge) sends the caller down
    Alembic's own path, which knows every case.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_HERE / "versions").glob("*.py"):
        if path.name == "__init__.py":
            continue
        found = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
        own = _QUOTED.fullmatch(found.get("revision", ""))
        if own is None or "down_revision" not in found:
            return None
        revisions.add(own.group(1))
        parents.update(_QUOTED.findall(found["down_revision"]))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _current_revisions(sync_conn: Connection) -> list[str]:
    if not inspect(sync_conn).has_table(_VERSION_TABLE):
        return []
    return [row[0] for row in sync_conn.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}"))]


def _upgrade(sync_conn: Connection) -> None:
    from alembic import command

    cfg = alembic_config()
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


async def upgrade_database(url: str) -> None:
    """Apply every pending migration; a no-op on an up-to-date database."""
    db = Database.unpooled(url)
    try:
        head = head_revision()
        if head is not None:
            async with db.read() as conn:
                if await conn.run_sync(_current_revisions) == [head]:
                    return
        async with db.write() as conn:
            await conn.run_sync(_upgrade)
    finally:
        await db.close()
