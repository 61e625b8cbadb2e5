"""Redacting events as a local user (PUT /rooms/{roomId}/redact/{eventId}/{txnId}).

Who may redact (redaction.yaml): anyone may redact their own events (the auth
rules then require the `m.room.redaction` event level), others need the
room's `redact` power level, and a server admin may redact events sent by
users of this server. The check runs here, under the room's lock, because
the auth rules alone would let any user of this server redact any other local
user's event (from v3 the redact level is checked only when the redaction is
applied, and a same-server redaction always applies).

Unknown events (or events of another room) may be redacted only with the
redact level: a moderator can pre-empt an event this server has not seen.

The redaction event carries `redacts` in its content from room version 11,
at the top level before. The persister marks the target `redacted_by`; every
read path then serves it redacted (serialize.py).
"""

from __future__ import annotations

from typing import Any

from hearth.core.events import StateKey
from hearth.core.power_levels import PowerLevels
from hearth.errors import forbidden
from hearth.rooms.persist import CREATE_KEY, POWER_LEVELS_KEY, DuplicateTxn, EventPersister, TxnRecord
from hearth.rooms.send import RoomSender
from hearth.rooms.serialize import scoped_txn_id
from hearth.storage.db import Database
from hearth.storage.events import EventsStore
from hearth.storage.rooms import RoomInfo
from hearth.storage.state import StateStore
from hearth.storage.users import UsersStore


class Redactor:
    def __init__(
        self,
        *,
        db: Database,
        events: EventsStore,
        state: StateStore,
        users: UsersStore,
        persister: EventPersister,
        sender: RoomSender,
        server_name: str,
    ) -> None:
        self._db = db
        self._events = events
        self._state = state
        self._users = users
        self._persister = persister
        self._sender = sender
        self._server_name = server_name

    async def redact(
        self, room_id: str, user_id: str, device_id: str, event_id: str, *, reason: str | None, txn_id: str
    ) -> str:
        """Send a redaction of `event_id`; returns its event ID (the first one for a repeated txn id)."""
        txn = TxnRecord(user_id, device_id, scoped_txn_id(f"redact/{room_id}/{event_id}", txn_id))
        room = await self._sender.room(room_id)
        content: dict[str, Any] = {}
        if reason is not None:
            content["reason"] = reason
        extra: dict[str, Any] | None = None
        if room.room_version.redacts_in_content:
            content["redacts"] = event_id
        else:
            extra = {"redacts": event_id}
        async with self._persister.locked(room_id):
            await self._check_may_redact(room, user_id, event_id)
            try:
                stored = await self._sender.send_locked(
                    room, user_id, "m.room.redaction", content, txn=txn, extra=extra
                )
            except DuplicateTxn as e:
                return e.event_id
        return stored.event_id

    async def _check_may_redact(self, room: RoomInfo, user_id: str, event_id: str) -> None:
        keys: list[StateKey] = [CREATE_KEY, POWER_LEVELS_KEY]
        async with self._db.read() as conn:
            target = (await self._events.by_ids(conn, [event_id])).get(event_id)
            key_nids = await self._state.key_nids(conn, keys, create=False)
            current = await self._state.current_event_nids(conn, room.room_nid, key_nids.values())
            found = await self._events.by_nids(conn, current.values())
        by_key = {k: found[current[n]].event for k, n in key_nids.items() if current.get(n) in found}
        known = target is not None and target.room_nid == room.room_nid
        if known and target is not None and target.event.sender == user_id:
            return
        power = PowerLevels(by_key.get(CREATE_KEY), by_key.get(POWER_LEVELS_KEY))
        if power.user_level(user_id) >= power.level("redact"):
            return
        if known and target is not None and self._is_local(target.event.sender):
            account = await self._users.get(user_id)
            if account is not None and account.is_admin:
                return
        raise forbidden("You may only redact your own events here (you lack the redact power level)")

    def _is_local(self, user_id: str) -> bool:
        return user_id.partition(":")[2] == self._server_name
