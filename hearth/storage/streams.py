"""Positions on the small per-user streams (account data, device lists, ...).

Each stream has one row in `stream_counters`. `next_position` bumps it with a
single `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` (the same SQL text on
SQLite >= 3.35 and PostgreSQL), inside the caller's write transaction.

Why a counter row and not a process-local allocator: the row lock the upsert
takes is held until the caller's transaction commits, so a second writer on
the same stream waits for the first to commit before it gets its number. A
position is therefore never visible before every smaller one is, and a reader
may take `current_position` as "everything up to here is readable" without
any in-memory bookkeeping, even with several processes on one PostgreSQL.
The price is that writers to one stream serialise; these streams are written
rarely (a client saving settings), so that costs nothing that matters. Take
the position as late as possible in the transaction to keep the lock short.
SQLite writers already run one at a time (`Database.write`).
"""

from __future__ import annotations

from sqlalchemy import select, text

from hearth.storage.db import DbConnection
from hearth.storage.tables import stream_counters

ACCOUNT_DATA = "account_data"

_BUMP = text(
    "INSERT INTO stream_counters (stream, position) VALUES (:stream, 1) "
    "ON CONFLICT (stream) DO UPDATE SET position = stream_counters.position + 1 "
    "RETURNING position"
)


async def next_position(conn: DbConnection, stream: str) -> int:
    """A new position on `stream`, greater than any handed out before (starts at 1)."""
    return int((await conn.execute(_BUMP, {"stream": stream})).scalar_one())


_ALL = text("SELECT stream, position FROM stream_counters")


async def all_positions(conn: DbConnection) -> dict[str, int]:
    """Every stream's highest committed position in one query (a stream never written is absent: 0).

    The table has one row per stream, so reading all of it is as cheap as
    reading one; /sync takes its token from this on every request.
    """
    return {str(r.stream): int(r.position) for r in await conn.execute(_ALL)}


async def current_position(conn: DbConnection, stream: str) -> int:
    """The highest committed position on `stream` (0 when nothing was written)."""
    value = (await conn.execute(
        select(stream_counters.c.position).where(stream_counters.c.stream == stream)
    )).scalar_one_or_none()
    return int(value) if value is not None else 0
