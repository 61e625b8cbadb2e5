"""Queries behind /sync: a user's rooms, what changed in them, recent timelines.

Everything here is ordered by stream position (the order events reached this
server), which is what sync tokens count in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, func, select

from hearth.core.room_versions import KNOWN_ROOM_VERSIONS
from hearth.storage.db import DbConnection
from hearth.storage.prepared import prepared
from hearth.storage.rooms import RoomInfo
from hearth.storage.tables import current_state, events, room_members, rooms

_IN_TIMELINE = and_(events.c.stream_ordering.is_not(None), events.c.rejected_reason.is_(None))


@dataclass(frozen=True, slots=True)
class Membership:
    """A user's current membership in one room."""

    room: RoomInfo
    membership: str
    event_nid: int
    stream_ordering: int


_MEMBERSHIPS = prepared(
    select(
        rooms.c.room_nid,
        rooms.c.room_id,
        rooms.c.room_version,
        room_members.c.membership,
        room_members.c.event_nid,
        room_members.c.stream_ordering,
    )
    .select_from(room_members.join(rooms, rooms.c.room_nid == room_members.c.room_nid))
    .where(room_members.c.user_id == bindparam("user_id"), room_members.c.forgotten.is_(False))
)

_CHANGED_ROOMS = prepared(
    select(events.c.room_nid)
    .where(events.c.stream_ordering > bindparam("since"), events.c.stream_ordering <= bindparam("upto"))
    .distinct()
)

_RECENT = prepared(
    select(events.c.event_nid)
    .where(
        events.c.room_nid == bindparam("room_nid"),
        _IN_TIMELINE,
        events.c.stream_ordering > bindparam("since"),
        events.c.stream_ordering <= bindparam("upto"),
    )
    .order_by(events.c.stream_ordering.desc())
    .limit(bindparam("limit"))
)

_STATE_AT = prepared(
    select(events.c.state_after_nid)
    .where(
        events.c.room_nid == bindparam("room_nid"),
        _IN_TIMELINE,
        events.c.stream_ordering <= bindparam("upto"),
    )
    .order_by(events.c.stream_ordering.desc())
    .limit(1)
)

_WITH_STATE = prepared(
    select(current_state.c.room_nid)
    .where(
        current_state.c.room_nid.in_(bindparam("room_nids", expanding=True)),
        current_state.c.state_key_nid.in_(bindparam("key_nids", expanding=True)),
    )
    .distinct()
)


class SyncStore:
    async def memberships(self, conn: DbConnection, user_id: str) -> list[Membership]:
        """Every room the user has a (not forgotten) membership in."""
        rows = await conn.execute(_MEMBERSHIPS, {"user_id": user_id})
        return [
            Membership(RoomInfo(nid, room_id, KNOWN_ROOM_VERSIONS[version]), membership, event_nid, stream)
            for nid, room_id, version, membership, event_nid, stream in rows
        ]

    async def rooms_with_events(self, conn: DbConnection, since: int, upto: int) -> set[int]:
        """Rooms (nids) with an event in (since, upto]: one range scan of the stream index."""
        if upto <= since:
            return set()
        return {r[0] for r in await conn.execute(_CHANGED_ROOMS, {"since": since, "upto": upto})}

    async def recent_event_nids(
        self, conn: DbConnection, room_nid: int, since: int, upto: int, limit: int
    ) -> list[int]:
        """Up to `limit` newest timeline events in (since, upto], newest first."""
        rows = await conn.execute(
            _RECENT, {"room_nid": room_nid, "since": since, "upto": upto, "limit": limit}
        )
        return [r[0] for r in rows]

    async def state_at_stream(self, conn: DbConnection, room_nid: int, upto: int) -> int | None:
        """The snapshot after the room's last timeline event at or before `upto`."""
        return (await conn.execute(_STATE_AT, {"room_nid": room_nid, "upto": upto})).scalar()

    async def member_counts(self, conn: DbConnection, room_nids: Iterable[int]) -> dict[int, dict[str, int]]:
        """{room nid: {membership: count}} for joined and invited members."""
        wanted = list(room_nids)
        out: dict[int, dict[str, int]] = {n: {} for n in wanted}
        for i in range(0, len(wanted), 500):
            rows = await conn.execute(
                select(room_members.c.room_nid, room_members.c.membership, func.count())
                .where(
                    room_members.c.room_nid.in_(wanted[i : i + 500]),
                    room_members.c.membership.in_(("join", "invite")),
                )
                .group_by(room_members.c.room_nid, room_members.c.membership)
            )
            for nid, membership, count in rows:
                out[nid][membership] = int(count)
        return out

    async def rooms_with_state(
        self, conn: DbConnection, room_nids: Iterable[int], key_nids: Iterable[int]
    ) -> set[int]:
        """The rooms among `room_nids` whose current state has any of `key_nids` (e.g. a name)."""
        wanted, keys = list(room_nids), list(key_nids)
        found: set[int] = set()
        if not keys:
            return found
        for i in range(0, len(wanted), 500):
            rows = await conn.execute(_WITH_STATE, {"room_nids": wanted[i : i + 500], "key_nids": keys})
            found.update(r[0] for r in rows)
        return found

    async def heroes(self, conn: DbConnection, room_nid: int, user_id: str, limit: int = 5) -> list[str]:
        """Members to name a room without a name by: joined/invited first, oldest first."""
        rows = await conn.execute(
            select(room_members.c.user_id)
            .where(
                room_members.c.room_nid == room_nid,
                room_members.c.user_id != user_id,
                room_members.c.membership.in_(("join", "invite")),
            )
            .order_by(room_members.c.stream_ordering)
            .limit(limit)
        )
        return [r[0] for r in rows]
