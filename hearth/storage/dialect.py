"""The few places where SQLite and PostgreSQL SQL differ, and nothing else.

This is the only module that imports `sqlalchemy.dialects.*` (a test enforces
it), so stores write one SQL text for both engines and call these helpers where
the engines disagree.

Each engine's dialect module is imported when first used: a SQLite server
never loads SQLAlchemy's PostgreSQL dialect (~5% of the start's instructions, ~2 MiB).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Table, bindparam, column, func, literal_column, table
from sqlalchemy.sql.dml import Insert

from hearth.storage.db import DbConnection
from hearth.storage.prepared import prepared
from hearth.storage.tables import FULL_TEXT_INDEX, event_search


def _dialect_insert(dialect_name: str) -> Any:
    """The engine's own `insert` construct (the one with ON CONFLICT)."""
    if dialect_name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert
    from sqlalchemy.dialects import postgresql

    return postgresql.insert


def upsert(
    conn: DbConnection,
    table: Table,
    values: Mapping[str, Any],
    conflict_cols: Sequence[str],
    update_cols: Sequence[str] | None = None,
) -> Insert:
    """INSERT ... ON CONFLICT (conflict_cols) DO UPDATE SET update_cols.

    With `update_cols` empty the statement does nothing on conflict.
    """
    stmt = _dialect_insert(conn.dialect.name)(table).values(**values)
    if update_cols is None:
        update_cols = [c for c in values if c not in conflict_cols]
    if not update_cols:
        return stmt.on_conflict_do_nothing(index_elements=list(conflict_cols))
    return stmt.on_conflict_do_update(
        index_elements=list(conflict_cols),
        set_={c: stmt.excluded[c] for c in update_cols},
    )


def upsert_statement(
    conn: DbConnection, table: Table, columns: Sequence[str], conflict_cols: Sequence[str]
) -> Insert:
    """`upsert` without the values, built once per shape: execute it with the values as parameters.

    For hot paths (a write per event): building and cache-keying an INSERT ... ON
    CONFLICT costs more CPU than SQLite takes to run it.
    """
    return _upsert_statement(conn.dialect.name, table, tuple(columns), tuple(conflict_cols))


@functools.cache
def _upsert_statement(dialect_name: str, table: Table, columns: tuple[str, ...],
                      conflict_cols: tuple[str, ...]) -> Insert:
    stmt = _dialect_insert(dialect_name)(table)
    update_cols = [c for c in columns if c not in conflict_cols]
    if not update_cols:
        return prepared(stmt.on_conflict_do_nothing(index_elements=list(conflict_cols)))
    return prepared(stmt.on_conflict_do_update(
        index_elements=list(conflict_cols), set_={c: stmt.excluded[c] for c in update_cols},
    ))


def insert_ignore(
    conn: DbConnection, table: Table, values: Mapping[str, Any], conflict_cols: Sequence[str]
) -> Insert:
    """INSERT that silently skips a row whose key already exists."""
    return upsert(conn, table, values, conflict_cols, update_cols=[])


@dataclass(frozen=True, slots=True)
class FullTextMatch:
    """A full-text condition on `event_search.value` (see migration 0005).

    Select from `from_`, filter with `where`, order by `rank` (higher is a
    better match).
    """

    from_: FromClause
    where: ColumnElement[bool]
    rank: ColumnElement[float]


def full_text_match(conn: DbConnection, words: Sequence[str]) -> FullTextMatch:
    """Rows of `event_search` whose text has every word (as a word prefix).

    `words` must be runs of word characters (letters, digits, underscore), so
    they cannot carry query syntax. SQLite asks the FTS5 table with a prefix
    phrase per word and ranks by BM25; PostgreSQL builds a prefix tsquery and
    ranks with ts_rank_cd, using the same to_tsvector expression as the GIN
    index so the planner uses it.
    """
    if conn.dialect.name == "sqlite":
        fts = table(FULL_TEXT_INDEX, column("rowid"))
        query = " ".join(f'"{w}"*' for w in words)
        return FullTextMatch(
            from_=event_search.join(fts, fts.c.rowid == event_search.c.event_nid),
            where=literal_column(FULL_TEXT_INDEX).op("MATCH")(bindparam("fts_query", query)),
            rank=-func.bm25(literal_column(FULL_TEXT_INDEX)),
        )
    config: ColumnElement[Any] = literal_column("'english'::regconfig")
    vector = func.to_tsvector(config, event_search.c.value)
    tsquery = func.to_tsquery(config, bindparam("fts_query", " & ".join(f"{w}:*" for w in words)))
    return FullTextMatch(
        from_=event_search,
        where=vector.op("@@")(tsquery),
        rank=func.ts_rank_cd(vector, tsquery),
    )
