"""Presence rows and the "who shares a room with whom" queries presence needs.

One row per user: the presence last published on the durable "presence"
stream (`stream_id` is the position of that publication) and the activity
times it was computed from. Sync asks "which rows changed since N, for users
who share a room with me" with one range scan of `presence_stream`, each
candidate checked against the reader's memberships by index; a sync that has
seen every position does not ask at all.

"Share a room" means both users are joined to it (invites do not count).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, bindparam, exists, or_, select

from hearth.storage import dialect
from hearth.storage.db import DbConnection
from hearth.storage.prepared import prepared
from hearth.storage.streams import StreamPositions
from hearth.storage.tables import presence, room_members

PRESENCE_STREAM = "presence"
OFFLINE = "offline"
_NOT_OFFLINE = ("online", "unavailable")


@dataclass(frozen=True, slots=True)
class PresenceRow:
    user_id: str
    state: str
    status_msg: str | None
    last_active_ts: int  # 0: never active
    last_seen_ts: int
    currently_active: bool
    stream_id: int


_COLUMNS = (
    presence.c.user_id,
    presence.c.state,
    presence.c.status_msg,
    presence.c.last_active_ts,
    presence.c.last_seen_ts,
    presence.c.currently_active,
    presence.c.stream_id,
)


def _row(r: Row[*tuple[Any, ...]]) -> PresenceRow:
    return PresenceRow(r.user_id, r.state, r.status_msg, r.last_active_ts, r.last_seen_ts,
                       bool(r.currently_active), r.stream_id)


# Made once: an alias made per call costs SQLAlchemy a new column collection
# (and cyclic garbage) every time.
_mine, _theirs = room_members.alias("mine"), room_members.alias("theirs")


def _shares_room_with(viewer: str) -> ColumnElement[bool]:
    """The presence row's user is joined to a room `viewer` is joined to."""
    return exists(
        select(_mine.c.room_nid)
        .select_from(_theirs.join(_mine, _mine.c.room_nid == _theirs.c.room_nid))
        .where(
            _theirs.c.user_id == presence.c.user_id,
            _theirs.c.membership == "join",
            _mine.c.user_id == viewer,
            _mine.c.membership == "join",
        )
    )


_SHARES_ROOM = prepared(
    select(_mine.c.room_nid)
    .select_from(_theirs.join(_mine, _mine.c.room_nid == _theirs.c.room_nid))
    .where(
        _theirs.c.user_id == bindparam("b"),
        _theirs.c.membership == "join",
        _mine.c.user_id == bindparam("a"),
        _mine.c.membership == "join",
    )
    .limit(1)
)
_ROOM_MATES = prepared(
    select(_theirs.c.user_id)
    .distinct()
    .select_from(_mine.join(_theirs, _theirs.c.room_nid == _mine.c.room_nid))
    .where(_mine.c.user_id == bindparam("user_id"), _mine.c.membership == "join",
           _theirs.c.membership == "join")
)


class PresenceStore:
    def __init__(self, positions: StreamPositions) -> None:
        self._positions = positions

    async def get(self, conn: DbConnection, user_id: str, *, for_update: bool = False) -> PresenceRow | None:
        stmt = select(*_COLUMNS).where(presence.c.user_id == user_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await conn.execute(stmt)).first()
        return _row(row) if row is not None else None

    async def put(self, conn: DbConnection, row: PresenceRow, *, publish: bool) -> int:
        """Store `row`; with `publish` at a new stream position (returned), else at `row.stream_id`."""
        stream_id = await self._positions.next(conn, PRESENCE_STREAM) if publish else row.stream_id
        values = {
            "user_id": row.user_id,
            "state": row.state,
            "status_msg": row.status_msg,
            "last_active_ts": row.last_active_ts,
            "last_seen_ts": row.last_seen_ts,
            "currently_active": row.currently_active,
            "stream_id": stream_id,
        }
        await conn.execute(dialect.upsert(conn, presence, values, ["user_id"]))
        return stream_id

    async def not_offline(self, conn: DbConnection) -> list[PresenceRow]:
        """Everyone published as online or unavailable (to time them out after a restart)."""
        rows = await conn.execute(select(*_COLUMNS).where(presence.c.state.in_(_NOT_OFFLINE)))
        return [_row(r) for r in rows]

    async def changed_for(
        self, conn: DbConnection, viewer: str, since: int, upto: int, limit: int
    ) -> list[PresenceRow]:
        """Rows published in (since, upto] of `viewer` and the users sharing a room with them.

        Oldest first; the newest `limit` when there are more.
        """
        rows = await conn.execute(
            select(*_COLUMNS)
            .where(
                presence.c.stream_id > since,
                presence.c.stream_id <= upto,
                or_(presence.c.user_id == viewer, _shares_room_with(viewer)),
            )
            .order_by(presence.c.stream_id.desc())
            .limit(limit)
        )
        return [_row(r) for r in reversed(rows.all())]

    async def current_for(self, conn: DbConnection, viewer: str, upto: int, limit: int) -> list[PresenceRow]:
        """Rows (not offline) of `viewer` and everyone sharing a room with them, as of `upto`."""
        rows = await conn.execute(
            select(*_COLUMNS)
            .where(
                presence.c.stream_id <= upto,
                presence.c.state.in_(_NOT_OFFLINE),
                or_(presence.c.user_id == viewer, _shares_room_with(viewer)),
            )
            .order_by(presence.c.stream_id.desc())
            .limit(limit)
        )
        return [_row(r) for r in reversed(rows.all())]

    async def rooms_joined_between(
        self, conn: DbConnection, user_id: str, since: int, upto: int
    ) -> list[int]:
        """Rooms `user_id` joined with an event in (since, upto] and is still joined to."""
        rows = await conn.execute(
            select(room_members.c.room_nid).where(
                room_members.c.user_id == user_id,
                room_members.c.membership == "join",
                room_members.c.stream_ordering > since,
                room_members.c.stream_ordering <= upto,
            )
        )
        return [int(r[0]) for r in rows]

    async def members_present(
        self, conn: DbConnection, room_nids: Sequence[int], upto: int, limit: int
    ) -> list[PresenceRow]:
        """Rows (not offline, as of `upto`) of the joined members of `room_nids`."""
        members = select(room_members.c.user_id).where(
            room_members.c.room_nid.in_(list(room_nids)), room_members.c.membership == "join"
        )
        rows = await conn.execute(
            select(*_COLUMNS)
            .where(
                presence.c.user_id.in_(members),
                presence.c.state.in_(_NOT_OFFLINE),
                presence.c.stream_id <= upto,
            )
            .order_by(presence.c.stream_id.desc())
            .limit(limit)
        )
        return [_row(r) for r in reversed(rows.all())]

    async def shares_room(self, conn: DbConnection, a: str, b: str) -> bool:
        found = await conn.execute(_SHARES_ROOM, {"a": a, "b": b})
        return found.first() is not None

    async def room_mates(self, conn: DbConnection, user_id: str) -> list[str]:
        """Everyone joined to a room `user_id` is joined to (including `user_id` if in any)."""
        rows = await conn.execute(_ROOM_MATES, {"user_id": user_id})
        return [str(r[0]) for r in rows]

    def current_position(self) -> int:
        return self._positions.current(PRESENCE_STREAM)
