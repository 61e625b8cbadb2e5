"""Positions on the small per-user streams (account data, receipts, to-device, presence).

Each stream has one row in `stream_counters`. `StreamPositions.next` bumps it
with a single `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` (the same SQL
text on SQLite >= 3.35 and PostgreSQL), inside the caller's write transaction.

The row lock the upsert takes is held until the caller's transaction commits,
so a second writer on the same stream waits for the first to commit before it
gets its number: positions commit in order. Writers to one stream therefore
serialise; these streams are written rarely (a client saving settings), so
that costs nothing that matters. Take the position as late as possible in the
transaction to keep the lock short. SQLite writers already run one at a time
(`Database.write`).

Readers never query the table: every /sync takes a token, and reading it
there cost a read transaction each time (three per woken long-poll). Instead
`StreamPositions` keeps each stream's committed position in memory, loaded
once at start and advanced by an after-commit callback of the transaction
that took the position, so a reader only ever sees a position whose data is
committed. Like the event stream's `PositionTracker`, this is process-local:
a second writer process would need a shared notification of commits.
"""

from __future__ import annotations

from sqlalchemy import text

from hearth.storage.db import Database, DbConnection, after_commit

ACCOUNT_DATA = "account_data"

_BUMP = text(
    "INSERT INTO stream_counters (stream, position) VALUES (:stream, 1) "
    "ON CONFLICT (stream) DO UPDATE SET position = stream_counters.position + 1 "
    "RETURNING position"
)
_ALL = text("SELECT stream, position FROM stream_counters")


async def all_positions(conn: DbConnection) -> dict[str, int]:
    """Every stream's highest committed position in one query (a stream never written is absent: 0)."""
    return {str(r.stream): int(r.position) for r in await conn.execute(_ALL)}


class StreamPositions:
    """The committed position of every counter-backed stream, kept in memory."""

    def __init__(self, committed: dict[str, int] | None = None) -> None:
        self._committed: dict[str, int] = dict(committed or {})

    @classmethod
    async def load(cls, db: Database) -> StreamPositions:
        async with db.read() as conn:
            return cls(await all_positions(conn))

    def current(self, stream: str) -> int:
        """The highest committed position on `stream` (0 when nothing was written)."""
        return self._committed.get(stream, 0)

    async def next(self, conn: DbConnection, stream: str) -> int:
        """A new position on `stream`, greater than any handed out before (starts at 1).

        It becomes `current` when `conn`'s transaction commits. Commits on one
        stream happen in position order, but their callbacks may run in
        another order (PostgreSQL), so the larger position wins.
        """
        position = int((await conn.execute(_BUMP, {"stream": stream})).scalar_one())

        def publish() -> None:
            if position > self._committed.get(stream, 0):
                self._committed[stream] = position

        after_commit(conn, publish)
        return position
