"""Sending events as a local user: the client's way into `EventPersister`.

Build and persist happen under the room's lock, so each event sits on the
extremities it was built on. A client transaction id is claimed in the
persist's own write transaction (`DuplicateTxn`), so a retried PUT returns
the first event instead of sending a second one, and a first send pays one
statement for both the check and the record. A send answers once the event
is settled (its push actions and counts computed: `EventPersister.settle`),
outside the room's lock.

On PostgreSQL, plain events (no state key, no relation, not a redaction:
most of what clients send) queue per room, and whoever takes the room's lock
sends every one queued so far: several of them become one chain, each
built on the one before and all stored by one statement
(`EventPersister.persist_chain`): when many members send into one room, its
lock is held once per batch instead of once per event, and each hold of the
lock costs at least one round trip. Anything the chain cannot take (a
refused event, a repeated txn id) is sent on its own afterwards, the usual way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hearth.core.errors import EventTooLarge, InvalidPDU
from hearth.core.events import Event
from hearth.errors import MatrixError, forbidden
from hearth.rooms.builder import EventBuilder
from hearth.rooms.persist import DuplicateTxn, EventPersister, EventRejected, TxnRecord
from hearth.storage.events import StoredEvent
from hearth.storage.rooms import RoomInfo, RoomsStore

# A check on the content of a client-sent state event of one type: (room_id, content) -> None or raise.
StateContentCheck = Callable[[str, Mapping[str, Any]], Awaitable[None]]
# A check on a client-sent event with `m.relates_to`: (room_id, sender, type, content) -> None or raise.
RelationCheck = Callable[[str, str, str, Mapping[str, Any]], Awaitable[None]]


@dataclass(slots=True)
class _Queued:
    """A plain event waiting for its room's lock, and once sent, its outcome."""

    sender: str
    event_type: str
    content: Mapping[str, Any]
    txn: TxnRecord | None
    event_id: str | None = None
    stream: int | None = None
    error: BaseException | None = None


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
        # Plain events waiting for their room's lock, by room id (see `_send_queued`).
        self._queued: dict[str, list[_Queued]] = {}

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
        if self._persister.chains and state_key is None and extra is None and (
            event_type != "m.room.redaction" and "m.relates_to" not in content
        ):
            return await self._send_queued(room, _Queued(sender, event_type, content, txn))
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

    async def _send_queued(self, room: RoomInfo, mine: _Queued) -> str:
        """A plain event: queue it, and whoever gets the room's lock first sends all that are queued."""
        self._queued.setdefault(room.room_id, []).append(mine)
        async with self._persister.locked(room.room_id):
            queued = self._queued.pop(room.room_id, [])
            try:
                await self._send_all(room, queued)
            except BaseException as e:
                # (A database failure, say.) Everyone still waiting hears of it.
                for one in queued:
                    if one.event_id is None and one.error is None:
                        one.error = e
                raise
        if mine.error is not None:
            raise mine.error
        assert mine.event_id is not None
        if mine.stream is not None:
            await self._persister.settle(mine.stream)
        return mine.event_id

    async def _send_all(self, room: RoomInfo, queued: list[_Queued]) -> None:
        """Send queued plain events in order: as one chain where the persister can, else one by one."""
        if not queued:
            return  # an earlier holder of the lock sent them
        chain: list[tuple[_Queued, Event]] = []
        alone = queued
        if len(queued) > 1 and await self._persister.can_chain_now(room):
            alone = []
            previous: Event | None = None
            for one in queued:
                try:
                    event = await self._build(room, one, previous)
                    await self._persister.check_on_head(room, event)
                except MatrixError as e:
                    one.error = e
                    continue
                except EventRejected:
                    alone.append(one)  # refused, or a retry of an event sent before: see send_locked
                    continue
                chain.append((one, event))
                previous = event
            if chain:
                stored = await self._persister.persist_chain(room, [(e, one.txn) for one, e in chain])
                if stored is None:
                    alone = [one for one, _ in chain] + alone
                else:
                    for (one, _), s in zip(chain, stored, strict=True):
                        one.event_id, one.stream = s.event_id, s.stream_ordering
        for one in alone:
            try:
                s = await self.send_locked(room, one.sender, one.event_type, one.content, txn=one.txn)
                one.event_id, one.stream = s.event_id, s.stream_ordering
            except DuplicateTxn as e:
                one.event_id = e.event_id
            except MatrixError as e:
                one.error = e

    async def _build(self, room: RoomInfo, one: _Queued, on: Event | None) -> Event:
        try:
            return await self._builder.build(
                room, sender=one.sender, event_type=one.event_type, content=one.content, on=on
            )
        except EventTooLarge as e:
            raise MatrixError(413, "M_TOO_LARGE", e.reason) from e
        except InvalidPDU as e:
            raise MatrixError(400, "M_BAD_JSON", e.reason) from e

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
