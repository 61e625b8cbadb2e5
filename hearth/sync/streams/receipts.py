"""The receipts stream: `m.receipt` ephemeral events in joined rooms.

An incremental sync gets, per room, only the receipts that changed since its
token (clients merge them by user, type and thread); an initial sync the
room's current receipts, the most recent ones per room plus the user's own.
Private receipts reach only their owner (the store filters them). With no
new position since the token nothing is queried.
"""

from __future__ import annotations

from typing import Any

from hearth.storage.db import Database
from hearth.storage.receipts import ReceiptsStore
from hearth.sync.streams import SyncContext
from hearth.sync.streams.filtering import ephemeral_filter, ephemeral_room_wanted, sender_wanted, type_wanted

# Receipts per room in an initial sync (besides the user's own).
INITIAL_RECEIPTS_PER_ROOM = 100
# Receipts in one incremental sync (the newest, for a very old token).
MAX_CHANGED_RECEIPTS = 5000


class ReceiptsStream:
    token_key = "receipts"

    def __init__(self, *, db: Database, store: ReceiptsStore) -> None:
        self._db = db
        self._store = store

    def current_position(self) -> int:
        return self._store.current_position()

    async def collect(self, ctx: SyncContext) -> None:
        part = ephemeral_filter(ctx.flt)
        if not ctx.joined_room_ids or not type_wanted(part, "m.receipt"):
            return
        upto = ctx.upto.receipts
        if ctx.since is not None and ctx.since.receipts >= upto:
            return
        user_id = ctx.requester.user_id
        async with self._db.read() as conn:
            if ctx.since is None:
                found = await self._store.current(conn, user_id, upto, INITIAL_RECEIPTS_PER_ROOM)
            else:
                since = ctx.since.receipts
                found = await self._store.changed(conn, user_id, since, upto, MAX_CHANGED_RECEIPTS)
        joined = set(ctx.joined_room_ids)
        by_room: dict[str, dict[str, Any]] = {}
        for r in found:
            if r.room_id not in joined or not ephemeral_room_wanted(part, r.room_id):
                continue
            if not sender_wanted(part, r.user_id):
                continue
            receipt: dict[str, Any] = {"ts": r.ts}
            if r.thread_id:
                receipt["thread_id"] = r.thread_id
            content = by_room.setdefault(r.room_id, {})
            content.setdefault(r.event_id, {}).setdefault(r.receipt_type, {})[r.user_id] = receipt
        for room_id, content in by_room.items():
            ctx.add_ephemeral(room_id, {"type": "m.receipt", "content": content})
