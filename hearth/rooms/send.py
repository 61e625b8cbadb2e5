"""Sending events as a local user: the client's way into `EventPersister`.

Build and persist happen under the room's lock, so each event sits on the
extremities it was built on. A client transaction id is claimed in the
persist's own write transaction (`DuplicateTxn`), so a retried PUT returns
the first event instead of sending a second one, and a first send pays one
statement for both the check and the record. A send answers once the event
is settled (its push actions and counts computed: `EventPersister.settle`),
outside the room's lock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hearth.core.errors import EventTooLarge, InvalidPDU
from hearth.errors import MatrixError, forbidden
from hearth.rooms.builder import EventBuilder
from hearth.rooms.persist import DuplicateTxn, EventPersister, EventRejected, TxnRecord
from hearth.storage.events import StoredEvent
from hearth.storage.rooms import RoomInfo, RoomsStore

# A check on the content of a client-sent state event of one type: (room_id, content) -> None or raise.
StateContentCheck = Callable[[str, Mapping[str, Any]], Awaitable[None]]
# A check on a client-sent event with `m.relates_to`: (room_id, sender, type, content) -> None or raise.
RelationCheck = Callable[[str, str, str, Mapping[str, Any]], Awaitable[None]]


class RoomSender:
    def __init__(
        self,
        *,
        rooms: RoomsStore,
        builder: EventBuilder,
        persister: EventPersister,
        state_checks: Mapping[str, StateContentCheck] | None = None,
        relation_check: RelationCheck | None = None,
    ) -> None:
        self._rooms = rooms
        self._builder = builder
        self._persister = persister
        # Run by `send` (clients), not `send_locked` (the server's own composed events).
        self._state_checks = dict(state_checks or {})
        self._relation_check = relation_check

    async def room(self, room_id: str) -> RoomInfo:
        """The room, or M_FORBIDDEN: senders learn nothing about rooms they are not in."""
        room = await self._rooms.get(room_id)
        if room is None:
            raise forbidden(f"You are not in room {room_id}")
        return room

    async def send(
        self,
        room_id: str,
        sender: str,
        event_type: str,
        content: Mapping[str, Any],
        *,
        state_key: str | None = None,
        txn: TxnRecord | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """Send an event and return its ID (the earlier one, for a repeated txn id)."""
        room = await self.room(room_id)
        check = self._state_checks.get(event_type) if state_key is not None else None
        if check is not None:
            await check(room_id, content)
        if self._relation_check is not None and state_key is None and "m.relates_to" in content:
            await self._relation_check(room_id, sender, event_type, content)
        async with self._persister.locked(room_id):
            try:
                stored = await self.send_locked(
                    room, sender, event_type, content, state_key=state_key, txn=txn, extra=extra
                )
            except DuplicateTxn as e:
                return e.event_id
        if stored.stream_ordering is not None:
            await self._persister.settle(stored.stream_ordering)
        return stored.event_id

    async def send_locked(
        self,
        room: RoomInfo,
        sender: str,
        event_type: str,
        content: Mapping[str, Any],
        *,
        state_key: str | None = None,
        txn: TxnRecord | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> StoredEvent:
        """`send` for a caller that already holds the room's lock (e.g. room creation)."""
        try:
            event = await self._builder.build(
                room, sender=sender, event_type=event_type, content=content, state_key=state_key, extra=extra
            )
        except EventTooLarge as e:
            raise MatrixError(413, "M_TOO_LARGE", e.reason) from e
        except InvalidPDU as e:
            raise MatrixError(400, "M_BAD_JSON", e.reason) from e
        try:
            return await self._persister.persist(room, event, txn=txn)
        except EventRejected as e:
            raise forbidden(e.reason) from e
