"""The few places where SQLite and PostgreSQL SQL differ, and nothing else.

This is the only module that imports `sqlalchemy.dialects.*` (a test enforces
it), so stores write one SQL text for both engines and call these helpers where
the engines disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Insert


def upsert(
    conn: AsyncConnection,
    table: Table,
    values: Mapping[str, Any],
    conflict_cols: Sequence[str],
    update_cols: Sequence[str] | None = None,
) -> Insert:
    """INSERT ... ON CONFLICT (conflict_cols) DO UPDATE SET update_cols.

    With `update_cols` empty the statement does nothing on conflict.
    """
    mod: Any = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = mod.insert(table).values(**values)
    if update_cols is None:
        update_cols = [c for c in values if c not in conflict_cols]
    if not update_cols:
        return stmt.on_conflict_do_nothing(index_elements=list(conflict_cols))  # type: ignore[no-any-return]
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=list(conflict_cols),
        set_={c: stmt.excluded[c] for c in update_cols},
    )


def insert_ignore(
    conn: AsyncConnection, table: Table, values: Mapping[str, Any], conflict_cols: Sequence[str]
) -> Insert:
    """INSERT that silently skips a row whose key already exists."""
    return upsert(conn, table, values, conflict_cols, update_cols=[])
