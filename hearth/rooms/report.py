"""Reporting content to the server's admins (report_content.yaml).

An event may be reported only by a user joined to its room who may see the
event; anything else is 404 M_NOT_FOUND, the same answer as for an event that
does not exist, so reports cannot probe for events. A room may be reported by
anyone (404 if this server does not know it), a user likewise (404 for an
unknown local user; remote users cannot be checked and are accepted).
"""

from __future__ import annotations

from hearth.clock import Clock
from hearth.errors import not_found
from hearth.rooms.reading import RoomReader
from hearth.rooms.visibility import HistoryVisibility
from hearth.storage.db import Database
from hearth.storage.reports import ReportsStore
from hearth.storage.rooms import RoomsStore
from hearth.storage.users import UsersStore


class ReportService:
    def __init__(
        self,
        *,
        db: Database,
        rooms: RoomsStore,
        users: UsersStore,
        reader: RoomReader,
        visibility: HistoryVisibility,
        store: ReportsStore,
        server_name: str,
        clock: Clock,
    ) -> None:
        self._db = db
        self._rooms = rooms
        self._users = users
        self._reader = reader
        self._visibility = visibility
        self._store = store
        self._server_name = server_name
        self._clock = clock

    async def report_event(self, reporter: str, room_id: str, event_id: str, reason: str | None) -> None:
        missing = not_found("The event was not found or you are not joined to the room")
        room = await self._rooms.get(room_id)
        if room is None:
            raise missing
        async with self._db.read() as conn:
            viewer = await self._visibility.viewer(conn, room, reporter)
            if viewer.membership != "join":
                raise missing
            if await self._reader.visible_event(conn, room, viewer, event_id) is None:
                raise missing
        await self._store.add(kind="event", reporter=reporter, room_id=room_id, event_id=event_id,
                              reason=reason, received_ts=self._clock.time_ms())

    async def report_room(self, reporter: str, room_id: str, reason: str) -> None:
        if await self._rooms.get(room_id) is None:
            raise not_found("The room was not found")
        await self._store.add(kind="room", reporter=reporter, room_id=room_id, reason=reason,
                              received_ts=self._clock.time_ms())

    async def report_user(self, reporter: str, user_id: str, reason: str) -> None:
        if user_id.partition(":")[2] == self._server_name and not await self._users.exists(user_id):
            raise not_found("The user was not found")
        await self._store.add(kind="user", reporter=reporter, target_user_id=user_id, reason=reason,
                              received_ts=self._clock.time_ms())
