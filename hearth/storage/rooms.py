"""Rooms, forward extremities, current membership and client transaction ids."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from hearth.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from hearth.storage import dialect
from hearth.storage.db import Database, DbConnection, after_commit
from hearth.storage.prepared import prepared
from hearth.storage.tables import event_txn_ids, events, forward_extremities, room_members, rooms, users

# Hot-path statements built once (see storage/events.py).
_DELETE_EXTREMITIES = prepared(delete(forward_extremities).where(
    forward_extremities.c.room_nid == bindparam("room_nid"),
    forward_extremities.c.event_nid.in_(bindparam("nids", expanding=True)),
))
_INSERT_EXTREMITY = prepared(insert(forward_extremities))
_MOVE_EXTREMITY = prepared(update(forward_extremities).where(
    forward_extremities.c.room_nid == bindparam("room"),
    forward_extremities.c.event_nid == bindparam("old"),
).values(event_nid=bindparam("new")))
_TXN_KEY = ("user_id", "device_id", "txn_id")
_EVENT_FOR_TXN = prepared(select(event_txn_ids.c.event_id).where(
    event_txn_ids.c.user_id == bindparam("user_id"),
    event_txn_ids.c.device_id == bindparam("device_id"),
    event_txn_ids.c.txn_id == bindparam("txn_id"),
))


@dataclass(frozen=True, slots=True)
class RoomInfo:
    room_nid: int
    room_id: str
    room_version: RoomVersion


@dataclass(frozen=True, slots=True)
class Extremity:
    event_nid: int
    event_id: str
    depth: int
    state_after_nid: int | None


class RoomIdTaken(Exception):
    """The room ID already names a room (a v12 create event built twice)."""


class RoomsStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._rooms: dict[str, RoomInfo] = {}
        # user -> count of committed changes to their room_members rows, so a
        # cache of a user's memberships can tell whether it is still right.
        self._membership_versions: dict[str, int] = {}

    def membership_version(self, user_id: str) -> int:
        """Changes whenever a change to the user's memberships (or forgotten flags) commits."""
        return self._membership_versions.get(user_id, 0)

    def _membership_changed(self, user_id: str) -> None:
        self._membership_versions[user_id] = self._membership_versions.get(user_id, 0) + 1

    async def create(
        self, conn: DbConnection, room_id: str, room_version: RoomVersion, now_ms: int
    ) -> RoomInfo:
        """Insert the room row; raises RoomIdTaken (the caller's transaction is then lost)."""
        try:
            nid = (
                await conn.execute(
                    insert(rooms)
                    .values(
                        room_id=room_id,
                        room_version=room_version.identifier,
                        created_ts=now_ms,
                        is_public=False,
                    )
                    .returning(rooms.c.room_nid)
                )
            ).scalar_one()
        except IntegrityError as e:
            raise RoomIdTaken(room_id) from e
        return RoomInfo(nid, room_id, room_version)

    async def get(self, room_id: str) -> RoomInfo | None:
        info = self._rooms.get(room_id)
        if info is not None:
            return info
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(rooms.c.room_nid, rooms.c.room_version).where(rooms.c.room_id == room_id)
                )
            ).first()
        if row is None:
            return None
        info = RoomInfo(row[0], room_id, KNOWN_ROOM_VERSIONS[row[1]])
        self._rooms[room_id] = info
        return info

    async def current_snapshot_nid(self, conn: DbConnection, room_nid: int) -> int | None:
        return (
            await conn.execute(
                select(rooms.c.current_snapshot_nid).where(rooms.c.room_nid == room_nid)
            )
        ).scalar_one()

    async def set_current_snapshot(self, conn: DbConnection, room_nid: int, snapshot_nid: int) -> None:
        await conn.execute(
            update(rooms).where(rooms.c.room_nid == room_nid).values(current_snapshot_nid=snapshot_nid)
        )

    async def set_public(self, room_id: str, is_public: bool) -> None:
        async with self._db.write() as conn:
            await conn.execute(update(rooms).where(rooms.c.room_id == room_id).values(is_public=is_public))

    # --- forward extremities -------------------------------------------------

    async def extremities(self, conn: DbConnection, room_nid: int) -> list[Extremity]:
        rows = await conn.execute(
            select(events.c.event_nid, events.c.event_id, events.c.depth, events.c.state_after_nid)
            .select_from(
                forward_extremities.join(events, events.c.event_nid == forward_extremities.c.event_nid)
            )
            .where(forward_extremities.c.room_nid == room_nid)
            .order_by(events.c.depth.desc(), events.c.event_nid.desc())
        )
        return [Extremity(*r) for r in rows]

    async def replace_extremities(
        self, conn: DbConnection, room_nid: int, remove: list[int], add: int
    ) -> None:
        if len(remove) == 1:
            # The usual case (an event on the room's one head): one statement, not two.
            moved = await conn.execute(_MOVE_EXTREMITY, {"room": room_nid, "old": remove[0], "new": add})
            if moved.rowcount == 1:
                return
        elif remove:
            await conn.execute(_DELETE_EXTREMITIES, {"room_nid": room_nid, "nids": remove})
        await conn.execute(_INSERT_EXTREMITY, {"room_nid": room_nid, "event_nid": add})

    # --- membership -------------------------------------------------------------

    async def set_membership(
        self,
        conn: DbConnection,
        room_nid: int,
        user_id: str,
        membership: str,
        event_nid: int,
        stream_ordering: int,
    ) -> None:
        await conn.execute(
            dialect.upsert(
                conn,
                room_members,
                {
                    "room_nid": room_nid,
                    "user_id": user_id,
                    "membership": membership,
                    "event_nid": event_nid,
                    "stream_ordering": stream_ordering,
                    "forgotten": False,
                },
                ["room_nid", "user_id"],
            )
        )
        after_commit(conn, lambda: self._membership_changed(user_id))

    async def membership(self, room_nid: int, user_id: str) -> tuple[str, int] | None:
        """(membership, event_nid) of a user's current membership, if any."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(room_members.c.membership, room_members.c.event_nid).where(
                        and_(room_members.c.room_nid == room_nid, room_members.c.user_id == user_id)
                    )
                )
            ).first()
        return (row[0], row[1]) if row else None

    async def rooms_for_user(self, user_id: str, membership: str = "join") -> list[str]:
        """Rooms where the user has `membership`; forgotten rooms are left out."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(rooms.c.room_id)
                .select_from(room_members.join(rooms, rooms.c.room_nid == room_members.c.room_nid))
                .where(
                    and_(
                        room_members.c.user_id == user_id,
                        room_members.c.membership == membership,
                        room_members.c.forgotten.is_(False),
                    )
                )
                .order_by(rooms.c.room_id)
            )
            return [r[0] for r in rows]

    async def deactivated_members(self, memberships: Iterable[str]) -> list[str]:
        """Deactivated local accounts that still have one of `memberships` somewhere."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(room_members.c.user_id).distinct()
                .select_from(room_members.join(users, users.c.user_id == room_members.c.user_id))
                .where(users.c.deactivated.is_(True), room_members.c.membership.in_(list(memberships)))
                .order_by(room_members.c.user_id)
            )
            return [r[0] for r in rows]

    async def memberships(self, room_nid: int, user_ids: Iterable[str]) -> dict[str, str]:
        """Current membership of those of `user_ids` that have one in the room."""
        wanted = list(set(user_ids))
        out: dict[str, str] = {}
        async with self._db.read() as conn:
            for i in range(0, len(wanted), 500):
                rows = await conn.execute(
                    select(room_members.c.user_id, room_members.c.membership).where(
                        and_(
                            room_members.c.room_nid == room_nid,
                            room_members.c.user_id.in_(wanted[i : i + 500]),
                        )
                    )
                )
                out.update({r[0]: r[1] for r in rows})
        return out

    async def user_memberships(self, user_id: str, room_ids: Iterable[str]) -> dict[str, str]:
        """The user's current membership in those of `room_ids` known here."""
        wanted = list(set(room_ids))
        out: dict[str, str] = {}
        async with self._db.read() as conn:
            for i in range(0, len(wanted), 500):
                rows = await conn.execute(
                    select(rooms.c.room_id, room_members.c.membership)
                    .select_from(room_members.join(rooms, rooms.c.room_nid == room_members.c.room_nid))
                    .where(
                        and_(room_members.c.user_id == user_id, rooms.c.room_id.in_(wanted[i : i + 500]))
                    )
                )
                out.update({r[0]: r[1] for r in rows})
        return out

    async def forget(self, room_nid: int, user_id: str) -> bool:
        """Mark a left (or banned) membership forgotten; False if the user is not out of the room.

        A later membership event resets the flag (`set_membership`).
        """
        async with self._db.write() as conn:
            result = await conn.execute(
                update(room_members)
                .where(
                    and_(
                        room_members.c.room_nid == room_nid,
                        room_members.c.user_id == user_id,
                        room_members.c.membership.in_(("leave", "ban")),
                    )
                )
                .values(forgotten=True)
                .returning(room_members.c.user_id)
            )
            if result.first() is None:
                return False
            after_commit(conn, lambda: self._membership_changed(user_id))
            return True

    async def members(self, room_nid: int, membership: str | None = "join") -> list[str]:
        stmt = select(room_members.c.user_id).where(room_members.c.room_nid == room_nid)
        if membership is not None:
            stmt = stmt.where(room_members.c.membership == membership)
        async with self._db.read() as conn:
            return [r[0] for r in await conn.execute(stmt.order_by(room_members.c.user_id))]

    # --- transaction ids --------------------------------------------------------

    async def event_for_txn(self, conn: DbConnection, key: tuple[str, str, str]) -> str | None:
        """The event a client transaction id (user, device, txn id) sent, if any."""
        user_id, device_id, txn_id = key
        params = {"user_id": user_id, "device_id": device_id, "txn_id": txn_id}
        return (await conn.execute(_EVENT_FOR_TXN, params)).scalar()

    async def claim_txn(self, conn: DbConnection, key: tuple[str, str, str], event_id: str, now_ms: int
                        ) -> str | None:
        """Record that the client transaction sent `event_id`; if it already sent one, its id instead.

        One statement for a first send: the row goes in unless the key exists
        (a concurrent claim of the same key waits for the other transaction).
        """
        user_id, device_id, txn_id = key
        # Every named column is in the key: ON CONFLICT DO NOTHING.
        claim = dialect.upsert_statement(conn, event_txn_ids, _TXN_KEY, _TXN_KEY)
        inserted = await conn.execute(claim, {
            "user_id": user_id, "device_id": device_id, "txn_id": txn_id, "event_id": event_id,
            "created_ts": now_ms,
        })
        return None if inserted.rowcount == 1 else await self.event_for_txn(conn, key)
