"""Batched reads behind the room directory, room summaries and space hierarchies.

These endpoints describe many rooms at once (a directory page, a space's
children), so every query here takes a list of rooms and answers for all of
them in one statement (chunked at 500 ids), never one query per room. Each is
an index lookup: `rooms.is_public` and `rooms.room_id` are indexed,
`current_state` and `room_members` are keyed by room first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import and_, func, select

from hearth.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from hearth.storage.db import DbConnection
from hearth.storage.tables import current_state, room_members, rooms, state_keys

_CHUNK = 500
T = TypeVar("T")


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


@dataclass(frozen=True, slots=True)
class RoomRow:
    """A room and the snapshot its current state is at (None before the create event)."""

    room_nid: int
    room_id: str
    room_version: RoomVersion
    snapshot_nid: int | None
    is_public: bool


_ROOM_COLUMNS = (
    rooms.c.room_nid,
    rooms.c.room_id,
    rooms.c.room_version,
    rooms.c.current_snapshot_nid,
    rooms.c.is_public,
)


def _row(r: Any) -> RoomRow:
    return RoomRow(r[0], r[1], KNOWN_ROOM_VERSIONS[r[2]], r[3], bool(r[4]))


class DirectoryStore:
    async def public_rooms(self, conn: DbConnection) -> list[RoomRow]:
        """Every room published in the directory."""
        rows: Any = await conn.execute(select(*_ROOM_COLUMNS).where(rooms.c.is_public.is_(True)))
        return [_row(r) for r in rows]

    async def rooms(self, conn: DbConnection, room_ids: Iterable[str]) -> dict[str, RoomRow]:
        """The rooms of `room_ids` this server knows."""
        out: dict[str, RoomRow] = {}
        for chunk in _chunks(list(set(room_ids))):
            rows: Any = await conn.execute(select(*_ROOM_COLUMNS).where(rooms.c.room_id.in_(chunk)))
            for r in rows:
                row = _row(r)
                out[row.room_id] = row
        return out

    async def current_state(
        self, conn: DbConnection, room_nids: Iterable[int], key_nids: Iterable[int]
    ) -> dict[int, dict[int, int]]:
        """room nid -> {state key nid: event nid} for the given keys of each room's current state."""
        keys = list(set(key_nids))
        out: dict[int, dict[int, int]] = {}
        if not keys:
            return out
        for chunk in _chunks(list(set(room_nids))):
            rows: Any = await conn.execute(
                select(
                    current_state.c.room_nid, current_state.c.state_key_nid, current_state.c.event_nid
                ).where(and_(current_state.c.room_nid.in_(chunk), current_state.c.state_key_nid.in_(keys)))
            )
            for room_nid, key_nid, event_nid in rows:
                out.setdefault(room_nid, {})[key_nid] = event_nid
        return out

    async def current_state_of_type(
        self, conn: DbConnection, room_nids: Iterable[int], event_type: str, limit_per_room: int
    ) -> dict[int, dict[str, int]]:
        """room nid -> {state_key: event nid} of every current state event of one type.

        Each room contributes at most `limit_per_room` entries (those with the
        smallest state keys), so a room with a huge number of such events
        cannot make one request unbounded.
        """
        out: dict[int, dict[str, int]] = {}
        for chunk in _chunks(list(set(room_nids))):
            rows: Any = await conn.execute(
                select(current_state.c.room_nid, state_keys.c.state_key, current_state.c.event_nid)
                .select_from(
                    current_state.join(
                        state_keys, state_keys.c.state_key_nid == current_state.c.state_key_nid
                    )
                )
                .where(and_(current_state.c.room_nid.in_(chunk), state_keys.c.type == event_type))
                .order_by(current_state.c.room_nid, state_keys.c.state_key)
            )
            for room_nid, state_key, event_nid in rows:
                entries = out.setdefault(room_nid, {})
                if len(entries) < limit_per_room:
                    entries[state_key] = event_nid
        return out

    async def joined_counts(self, conn: DbConnection, room_nids: Iterable[int]) -> dict[int, int]:
        out: dict[int, int] = {}
        for chunk in _chunks(list(set(room_nids))):
            rows: Any = await conn.execute(
                select(room_members.c.room_nid, func.count())
                .where(and_(room_members.c.room_nid.in_(chunk), room_members.c.membership == "join"))
                .group_by(room_members.c.room_nid)
            )
            out.update({r[0]: int(r[1]) for r in rows})
        return out

    async def memberships(self, conn: DbConnection, user_id: str, room_nids: Iterable[int]) -> dict[int, str]:
        """The user's current membership in those of the rooms where they have one."""
        out: dict[int, str] = {}
        for chunk in _chunks(list(set(room_nids))):
            rows: Any = await conn.execute(
                select(room_members.c.room_nid, room_members.c.membership).where(
                    and_(room_members.c.user_id == user_id, room_members.c.room_nid.in_(chunk))
                )
            )
            out.update({r[0]: r[1] for r in rows})
        return out

    async def joined_sample(self, conn: DbConnection, room_nid: int, limit: int) -> list[str]:
        """Up to `limit` joined members of a room (to name servers that know it)."""
        rows: Any = await conn.execute(
            select(room_members.c.user_id)
            .where(and_(room_members.c.room_nid == room_nid, room_members.c.membership == "join"))
            .limit(limit)
        )
        return [r[0] for r in rows]

    async def members_with(self, conn: DbConnection, room_nid: int, membership: str) -> list[str]:
        rows: Any = await conn.execute(
            select(room_members.c.user_id)
            .where(and_(room_members.c.room_nid == room_nid, room_members.c.membership == membership))
            .order_by(room_members.c.user_id)
        )
        return [r[0] for r in rows]
