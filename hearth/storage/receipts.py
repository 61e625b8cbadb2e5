"""Receipts: the latest receipt per (room, user, type, thread), and what sync needs of them.

Only the newest receipt of each (room, user, receipt type, thread) is kept: a
receipt is an "up to" marker, so older ones mean nothing once replaced. Each
change takes a position on the durable "receipts" stream (`stream_counters`)
and stamps the row with it, so "what changed since position N in the rooms I
am joined to" is one range scan of `receipts_stream` joined to the reader's
memberships, and a sync that has seen everything does not query at all.

Private receipts (m.read.private) are filtered in SQL: only their owner ever
reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, and_, func, or_, select

from hearth.storage import dialect
from hearth.storage.db import DbConnection
from hearth.storage.streams import StreamPositions
from hearth.storage.tables import receipts, room_members, rooms

RECEIPTS_STREAM = "receipts"
PRIVATE_READ = "m.read.private"
# thread_id of an unthreaded receipt (primary key columns cannot be NULL).
UNTHREADED = ""


@dataclass(frozen=True, slots=True)
class Receipt:
    room_id: str
    user_id: str
    receipt_type: str
    thread_id: str  # UNTHREADED, "main" or a thread root's event ID
    event_id: str
    ts: int
    stream_id: int


_COLUMNS = (
    rooms.c.room_id,
    receipts.c.user_id,
    receipts.c.receipt_type,
    receipts.c.thread_id,
    receipts.c.event_id,
    receipts.c.ts,
    receipts.c.stream_id,
)


def _visible_to(user_id: str) -> Select[tuple[object, ...]]:
    """Receipts in rooms `user_id` is joined to, private ones only if theirs."""
    joined = and_(
        room_members.c.room_nid == receipts.c.room_nid,
        room_members.c.user_id == user_id,
        room_members.c.membership == "join",
    )
    return (
        select(*_COLUMNS)
        .select_from(
            receipts.join(room_members, joined).join(rooms, rooms.c.room_nid == receipts.c.room_nid)
        )
        .where(or_(receipts.c.receipt_type != PRIVATE_READ, receipts.c.user_id == user_id))
    )


class ReceiptsStore:
    def __init__(self, positions: StreamPositions) -> None:
        self._positions = positions

    async def put(
        self,
        conn: DbConnection,
        *,
        room_nid: int,
        user_id: str,
        receipt_type: str,
        thread_id: str,
        event_id: str,
        event_stream: int,
        ts: int,
    ) -> int | None:
        """Store a receipt unless the stored one is at this event or later.

        Returns the new stream position, or None when nothing changed. The
        existing row is locked (PostgreSQL) so two concurrent receipts of one
        user compare against each other.
        """
        existing = (
            await conn.execute(
                select(receipts.c.event_stream)
                .where(
                    receipts.c.room_nid == room_nid,
                    receipts.c.user_id == user_id,
                    receipts.c.receipt_type == receipt_type,
                    receipts.c.thread_id == thread_id,
                )
                .with_for_update()
            )
        ).scalar_one_or_none()
        if existing is not None and existing >= event_stream:
            return None
        position = await self._positions.next(conn, RECEIPTS_STREAM)
        values = {
            "room_nid": room_nid,
            "user_id": user_id,
            "receipt_type": receipt_type,
            "thread_id": thread_id,
            "event_id": event_id,
            "event_stream": event_stream,
            "ts": ts,
            "stream_id": position,
        }
        await conn.execute(
            dialect.upsert(conn, receipts, values, ["room_nid", "user_id", "receipt_type", "thread_id"])
        )
        return position

    async def changed(
        self, conn: DbConnection, user_id: str, since: int, upto: int, limit: int
    ) -> list[Receipt]:
        """Receipts `user_id` may see that changed in (since, upto], oldest first.

        At most `limit`, the newest ones when there are more (a very old token).
        """
        stmt = (
            _visible_to(user_id)
            .where(receipts.c.stream_id > since, receipts.c.stream_id <= upto)
            .order_by(receipts.c.stream_id.desc())
            .limit(limit)
        )
        rows = await conn.execute(stmt)
        return [Receipt(*row) for row in reversed(rows.all())]

    async def current(self, conn: DbConnection, user_id: str, upto: int, per_room: int) -> list[Receipt]:
        """The receipts `user_id` may see in their joined rooms as of `upto` (an initial sync).

        Per room the `per_room` most recent ones, plus always the user's own
        (their client needs them to know what they have read).
        """
        ranked = (
            _visible_to(user_id)
            .add_columns(
                func.row_number()
                .over(partition_by=receipts.c.room_nid, order_by=receipts.c.stream_id.desc())
                .label("rank")
            )
            .where(receipts.c.stream_id <= upto)
            .subquery()
        )
        stmt = (
            select(*(ranked.c[c.name] for c in _COLUMNS))
            .where(or_(ranked.c.rank <= per_room, ranked.c.user_id == user_id))
            .order_by(ranked.c.stream_id)
        )
        rows = await conn.execute(stmt)
        return [Receipt(*row) for row in rows]

    def current_position(self) -> int:
        return self._positions.current(RECEIPTS_STREAM)
