"""The to-device stream: top-level `to_device.events` for the syncing device.

A device gets the messages in its inbox with positions in (since, upto], the
oldest first and at most `limit` per response. If more are pending,
next_batch carries the position of the last one delivered instead of `upto`,
so the rest come in the next response (which returns at once: they are news).

Acknowledgement: a sync whose `since` has to_device position P proves the
client holds the response that issued P, so the device's messages at or
below P are deleted. Until then a client that retries with an older token
gets them again (delivery is at least once, and never again once acked).
The delete is a write only when there is something to delete. The store keeps
each device's inbox bounds (newest position stored, position acknowledged up
to), so a sync for a device with nothing pending or to delete reads nothing.

Positions are global (one per send), so a token names the same point in
every device's inbox; a device with nothing pending gets `upto`.
"""

from __future__ import annotations

from hearth.storage.db import Database
from hearth.storage.to_device import ToDeviceMessage, ToDeviceStore
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
        bounds = self._store.bounds(user_id, device_id)
        if bounds is None:
            async with self._db.read() as conn:
                bounds = await self._store.load_bounds(conn, user_id, device_id)
        check_acked = since > 0 and bounds.may_hold(0, since)
        check_pending = bounds.may_hold(since, upto)
        acked = False
        pending: list[ToDeviceMessage] = []
        if check_acked or check_pending:
            async with self._db.read() as conn:
                acked = check_acked and await self._store.has_upto(conn, user_id, device_id, since)
                if check_pending:
                    pending = await self._store.pending(
                        conn, user_id, device_id, since, upto, self._limit + 1
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
