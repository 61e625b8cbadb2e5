"""The to-device stream: top-level `to_device.events` for the syncing device.

A device gets the messages in its inbox with positions in (since, upto], the
oldest first and at most `limit` per response. If more are pending,
next_batch carries the position of the last one delivered instead of `upto`,
so the rest come in the next response (which returns at once: they are news).

Acknowledgement: a sync whose `since` has to_device position P proves the
client holds the response that issued P, so the device's messages at or
below P are deleted. Until then a client that retries with an older token
gets them again (delivery is at least once, and never again once acked).
The delete is a write only when there is something to delete.

Positions are global (one per send), so a token names the same point in
every device's inbox; a device with nothing pending gets `upto`.
"""

from __future__ import annotations

from hearth.storage.db import Database
from hearth.storage.to_device import ToDeviceStore
from hearth.sync.streams import SyncContext

# Messages per response (the spec recommends 100).
DEFAULT_LIMIT = 100


class ToDeviceStream:
    token_key = "to_device"

    def __init__(self, *, db: Database, store: ToDeviceStore, limit: int = DEFAULT_LIMIT) -> None:
        self._db = db
        self._store = store
        self._limit = limit

    def current_position(self) -> int:
        return self._store.current_position()

    async def collect(self, ctx: SyncContext) -> None:
        user_id, device_id = ctx.requester.user_id, ctx.requester.device_id
        since = ctx.since.to_device if ctx.since is not None else 0
        upto = ctx.upto.to_device
        async with self._db.read() as conn:
            acked = since > 0 and await self._store.has_upto(conn, user_id, device_id, since)
            pending = (
                await self._store.pending(conn, user_id, device_id, since, upto, self._limit + 1)
                if since < upto
                else []
            )
        if acked:
            async with self._db.write() as conn:
                await self._store.delete_upto(conn, user_id, device_id, since)
        if len(pending) > self._limit:
            pending = pending[: self._limit]
            ctx.stopped_at[self.token_key] = pending[-1].stream_id
        ctx.top_level["to_device"] = {
            "events": [{"sender": m.sender, "type": m.type, "content": m.content} for m in pending]
        }
        if pending:
            ctx.news = True
