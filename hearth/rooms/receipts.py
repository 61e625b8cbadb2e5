"""Receipts and read markers: where a user has read up to in a room.

Receipts (receipts.md) are "up to" markers: `m.read` is shown to the room,
`m.read.private` only to its owner. Each is kept per thread: unthreaded (no
`thread_id`), `main` (the main timeline) or a thread root's event ID. The
fully read marker (read_markers.md) is room account data of type
`m.fully_read`, which only this service writes.

Rules applied here, for both endpoints:
- only a user joined to the room may set them (403, whether or not the room
  exists, so nobody learns which rooms exist);
- the event must be a timeline event of that room (404 otherwise);
- a threaded receipt must match the event's thread: `main` only for events
  not in a thread, a root's ID only for the root itself or events in its
  thread, found by following relations up to 3 hops as the spec recommends
  (400 M_INVALID_PARAM otherwise);
- markers only move forward: a receipt or fully read marker at an event before
  the stored one is accepted and changes nothing, so a slow client cannot
  rewind another device's progress.

Everything a request sets is written in one transaction. Afterwards public
receipts wake the room's long-polls, private receipts and the fully read
marker only the user's, and read listeners (unread notification counts) hear
about each receipt that moved.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from hearth.clock import Clock
from hearth.errors import forbidden, invalid_param, not_found
from hearth.notifier import Notifier
from hearth.storage.account_data import AccountDataStore
from hearth.storage.db import Database, DbConnection
from hearth.storage.events import EventsStore, StoredEvent, relation_of
from hearth.storage.receipts import PRIVATE_READ, UNTHREADED, ReceiptsStore
from hearth.storage.rooms import RoomsStore

log = logging.getLogger(__name__)

PUBLIC_READ = "m.read"
RECEIPT_TYPES = (PUBLIC_READ, PRIVATE_READ)
FULLY_READ = "m.fully_read"
MAIN_THREAD = "main"
THREAD_REL = "m.thread"
# How far to follow relations to find an event's thread (receipts.md).
MAX_THREAD_HOPS = 3
MAX_ID_LENGTH = 255

# (user_id, room_id, event_id, thread_id or None for unthreaded), after commit.
ReadListener = Callable[[str, str, str, "str | None"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ReceiptUpdate:
    receipt_type: str  # m.read or m.read.private
    event_id: str
    thread_id: str | None  # None: unthreaded


class ReceiptsService:
    def __init__(
        self,
        *,
        db: Database,
        rooms: RoomsStore,
        events: EventsStore,
        store: ReceiptsStore,
        account_data: AccountDataStore,
        notifier: Notifier,
        clock: Clock,
    ) -> None:
        self._db = db
        self._rooms = rooms
        self._events = events
        self._store = store
        self._account_data = account_data
        self._notifier = notifier
        self._clock = clock
        self._read_listeners: list[ReadListener] = []

    def add_read_listener(self, listener: ReadListener) -> None:
        """Call `listener` after each m.read / m.read.private receipt that moved."""
        self._read_listeners.append(listener)

    async def send_receipt(
        self, user_id: str, room_id: str, receipt_type: str, event_id: str, thread_id: str | None
    ) -> None:
        """POST /receipt/{receiptType}/{eventId}; m.fully_read is the read marker."""
        if receipt_type == FULLY_READ:
            if thread_id is not None:
                raise invalid_param("thread_id cannot be used with m.fully_read")
            await self.set_markers(user_id, room_id, fully_read=event_id)
            return
        if receipt_type not in RECEIPT_TYPES:
            raise invalid_param(f"Receipt type must be one of m.read, m.read.private, {FULLY_READ}")
        await self.set_markers(user_id, room_id, receipts=[ReceiptUpdate(receipt_type, event_id, thread_id)])

    async def set_markers(
        self,
        user_id: str,
        room_id: str,
        *,
        fully_read: str | None = None,
        receipts: Sequence[ReceiptUpdate] = (),
    ) -> None:
        """Move the fully read marker and/or receipts, all in one transaction."""
        for receipt in receipts:
            _check_thread_id_form(receipt.thread_id)
        room = await self._rooms.get(room_id)
        membership = await self._rooms.membership(room.room_nid, user_id) if room is not None else None
        if room is None or membership is None or membership[0] != "join":
            raise forbidden("You are not joined to this room")
        if fully_read is None and not receipts:
            return
        current_marker = (
            await self._account_data.get(user_id, room_id, FULLY_READ) if fully_read is not None else None
        )
        current_marker_id = current_marker.get("event_id") if current_marker else None
        wanted = {r.event_id for r in receipts}
        if fully_read is not None:
            wanted.add(fully_read)
        async with self._db.read() as conn:
            lookup = set(wanted)
            if isinstance(current_marker_id, str):
                lookup.add(current_marker_id)
            found = await self._events.by_ids(conn, lookup)
            targets: dict[str, StoredEvent] = {}
            for event_id in wanted:
                stored = found.get(event_id)
                if (
                    stored is None
                    or stored.room_nid != room.room_nid
                    or stored.stream_ordering is None
                    or stored.rejected_reason is not None
                ):
                    raise not_found(f"Event {event_id[:255]} not found in this room")
                targets[event_id] = stored
            for receipt in receipts:
                if receipt.thread_id is not None:
                    await self._check_thread(conn, targets[receipt.event_id], receipt.thread_id)

        now = self._clock.time_ms()
        moved: list[ReceiptUpdate] = []
        marker_moved = False
        async with self._db.write() as conn:
            if fully_read is not None:
                previous = found.get(current_marker_id) if isinstance(current_marker_id, str) else None
                target_stream = targets[fully_read].stream_ordering or 0
                if previous is None or (previous.stream_ordering or 0) < target_stream:
                    content = {"event_id": fully_read}
                    await self._account_data.put_in(conn, user_id, room_id, FULLY_READ, content)
                    marker_moved = True
            for receipt in receipts:
                position = await self._store.put(
                    conn,
                    room_nid=room.room_nid,
                    user_id=user_id,
                    receipt_type=receipt.receipt_type,
                    thread_id=receipt.thread_id if receipt.thread_id is not None else UNTHREADED,
                    event_id=receipt.event_id,
                    event_stream=targets[receipt.event_id].stream_ordering or 0,
                    ts=now,
                )
                if position is not None:
                    moved.append(receipt)

        if marker_moved or any(r.receipt_type == PRIVATE_READ for r in moved):
            self._notifier.notify_user(user_id)
        if any(r.receipt_type == PUBLIC_READ for r in moved):
            self._notifier.notify_room(room_id)
        for receipt in moved:
            for listener in self._read_listeners:
                try:
                    await listener(user_id, room_id, receipt.event_id, receipt.thread_id)
                except Exception:
                    # The receipt is stored; a failing follower must not fail the request.
                    log.exception("Read listener failed for a receipt in %s", room_id)

    async def _check_thread(self, conn: DbConnection, stored: StoredEvent, thread_id: str) -> None:
        thread = await self._thread_of(conn, stored)
        if thread_id == MAIN_THREAD:
            if thread != MAIN_THREAD:
                raise invalid_param("The event is in a thread, not in the main timeline")
        elif thread != thread_id and stored.event_id != thread_id:
            raise invalid_param("The event is not in the thread given by thread_id")

    async def _thread_of(self, conn: DbConnection, stored: StoredEvent) -> str:
        """The thread root's ID of the thread `stored` is in, or "main"."""
        event = stored.event
        for _ in range(MAX_THREAD_HOPS):
            relation = relation_of(event)
            if relation is None:
                return MAIN_THREAD
            target, rel_type, _key = relation
            if rel_type == THREAD_REL:
                return target
            parent = (await self._events.by_ids(conn, [target])).get(target)
            if parent is None or parent.room_nid != stored.room_nid:
                return MAIN_THREAD
            event = parent.event
        return MAIN_THREAD


def _check_thread_id_form(thread_id: str | None) -> None:
    if thread_id is None:
        return
    if not thread_id:
        raise invalid_param("thread_id field must be a non-empty string")
    if thread_id != MAIN_THREAD and (not thread_id.startswith("$") or len(thread_id) > MAX_ID_LENGTH):
        raise invalid_param("thread_id must be 'main' or the event ID of a thread root")
