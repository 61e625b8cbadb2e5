"""Send-to-device messages: each device's inbox, and the senders' transaction ids.

A send takes one position on the durable "to_device" stream (`stream_counters`)
and writes one inbox row per recipient device at that position, in the same
transaction that records the sender's transaction id, so a retried request
either finds its txn id (and writes nothing) or is the first. Rows stay until
the recipient acknowledges them by syncing with a token whose to_device
position is at or past theirs; reading a device's inbox is a range scan of the
primary key (user_id, device_id, stream_id).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select

from hearth.storage import dialect
from hearth.storage.db import DbConnection, after_commit
from hearth.storage.encoding import dumps_storable
from hearth.storage.streams import StreamPositions
from hearth.storage.tables import devices, to_device_inbox, to_device_txns

TO_DEVICE_STREAM = "to_device"
# Users per device lookup, well below either engine's bound-parameter limit.
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ToDeviceMessage:
    stream_id: int
    sender: str
    type: str
    content: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message for one device, before it has a position."""

    user_id: str
    device_id: str
    content: dict[str, Any]


# Devices whose inbox bounds are kept (see `ToDeviceStore.bounds`).
BOUNDS_CACHE_SIZE = 100_000


@dataclass(slots=True)
class InboxBounds:
    """What is known of a device's inbox without reading it.

    `newest` is at least the newest position ever stored for the device;
    every message at or below `acked` has been deleted. So the inbox holds
    nothing in (a, b] when b <= acked or newest <= a. Both only err on the
    side of "maybe": a deleted device's inbox keeps its old bounds.
    """

    newest: int
    acked: int

    def may_hold(self, after: int, upto: int) -> bool:
        """Whether the inbox may hold messages in (after, upto]."""
        return after < upto and upto > self.acked and self.newest > max(after, self.acked)


class ToDeviceStore:
    def __init__(self, positions: StreamPositions) -> None:
        self._positions = positions
        # (user, device) -> inbox bounds, updated after each commit that adds or acks.
        self._bounds: OrderedDict[tuple[str, str], InboxBounds] = OrderedDict()

    def bounds(self, user_id: str, device_id: str) -> InboxBounds | None:
        """The device's inbox bounds if known (a sync with nothing to deliver then reads nothing)."""
        return self._bounds.get((user_id, device_id))

    async def load_bounds(self, conn: DbConnection, user_id: str, device_id: str) -> InboxBounds:
        """Read the device's newest stored position, and keep it (unless an add got there first)."""
        newest = (
            await conn.execute(
                select(func.max(to_device_inbox.c.stream_id)).where(
                    to_device_inbox.c.user_id == user_id, to_device_inbox.c.device_id == device_id
                )
            )
        ).scalar()
        return self._keep((user_id, device_id), InboxBounds(int(newest or 0), 0), replace=False)

    def _keep(self, key: tuple[str, str], bounds: InboxBounds, *, replace: bool) -> InboxBounds:
        kept = self._bounds.get(key)
        if kept is None or replace:
            kept = self._bounds[key] = bounds
            if len(self._bounds) > BOUNDS_CACHE_SIZE:
                self._bounds.popitem(last=False)
        return kept

    def _note_added(self, keys: Iterable[tuple[str, str]], position: int) -> None:
        for key in keys:
            known = self._bounds.get(key)
            if known is None:
                self._keep(key, InboxBounds(position, 0), replace=True)
            else:
                known.newest = max(known.newest, position)

    def _note_acked(self, key: tuple[str, str], upto: int) -> None:
        known = self._bounds.get(key)
        if known is not None:
            known.acked = max(known.acked, upto)

    async def record_txn(
        self, conn: DbConnection, user_id: str, device_id: str, txn_id: str, now_ms: int
    ) -> bool:
        """Remember a sender's txn id; False if it was already used (a retry).

        On PostgreSQL a concurrent duplicate waits on the key until the first
        commits, then sees the conflict, so it too returns False.
        """
        stmt = dialect.insert_ignore(
            conn,
            to_device_txns,
            {"user_id": user_id, "device_id": device_id, "txn_id": txn_id, "created_ts": now_ms},
            ["user_id", "device_id", "txn_id"],
        ).returning(to_device_txns.c.txn_id)
        return (await conn.execute(stmt)).first() is not None

    async def devices_of(self, conn: DbConnection, user_ids: Iterable[str]) -> dict[str, list[str]]:
        """The existing devices of each of `user_ids` (users without any are left out)."""
        found: dict[str, list[str]] = {}
        wanted = sorted(set(user_ids))
        for start in range(0, len(wanted), _CHUNK):
            rows = await conn.execute(
                select(devices.c.user_id, devices.c.device_id).where(
                    devices.c.user_id.in_(wanted[start : start + _CHUNK])
                )
            )
            for user_id, device_id in rows:
                found.setdefault(user_id, []).append(device_id)
        return found

    async def add(
        self, conn: DbConnection, *, sender: str, type_: str, deliveries: Sequence[Delivery]
    ) -> int:
        """Queue `deliveries` at one new stream position, which is returned.

        Call it last in the transaction: the position's counter row stays
        locked until commit.
        """
        position = await self._positions.next(conn, TO_DEVICE_STREAM)
        keys = {(d.user_id, d.device_id) for d in deliveries}
        after_commit(conn, lambda: self._note_added(keys, position))
        await conn.execute(
            insert(to_device_inbox),
            [
                {
                    "user_id": d.user_id,
                    "device_id": d.device_id,
                    "stream_id": position,
                    "sender": sender,
                    "type": type_,
                    "content": dumps_storable(d.content),
                }
                for d in deliveries
            ],
        )
        return position

    async def pending(
        self, conn: DbConnection, user_id: str, device_id: str, after: int, upto: int, limit: int
    ) -> list[ToDeviceMessage]:
        """The device's messages in (after, upto], oldest first, at most `limit`."""
        rows = await conn.execute(
            select(
                to_device_inbox.c.stream_id,
                to_device_inbox.c.sender,
                to_device_inbox.c.type,
                to_device_inbox.c.content,
            )
            .where(
                to_device_inbox.c.user_id == user_id,
                to_device_inbox.c.device_id == device_id,
                to_device_inbox.c.stream_id > after,
                to_device_inbox.c.stream_id <= upto,
            )
            .order_by(to_device_inbox.c.stream_id)
            .limit(limit)
        )
        return [ToDeviceMessage(int(s), sender, type_, json.loads(c)) for s, sender, type_, c in rows]

    async def has_upto(self, conn: DbConnection, user_id: str, device_id: str, upto: int) -> bool:
        """Whether the device has messages at or below `upto` (delivered, now acknowledged)."""
        row = (
            await conn.execute(
                select(to_device_inbox.c.stream_id)
                .where(
                    to_device_inbox.c.user_id == user_id,
                    to_device_inbox.c.device_id == device_id,
                    to_device_inbox.c.stream_id <= upto,
                )
                .limit(1)
            )
        ).first()
        return row is not None

    async def delete_upto(self, conn: DbConnection, user_id: str, device_id: str, upto: int) -> None:
        after_commit(conn, lambda: self._note_acked((user_id, device_id), upto))
        await conn.execute(
            delete(to_device_inbox).where(
                to_device_inbox.c.user_id == user_id,
                to_device_inbox.c.device_id == device_id,
                to_device_inbox.c.stream_id <= upto,
            )
        )

    def current_position(self) -> int:
        return self._positions.current(TO_DEVICE_STREAM)


async def delete_for_devices(conn: DbConnection, user_id: str, device_ids: Sequence[str]) -> None:
    """Drop deleted devices' inboxes and their txn ids (a reused device ID starts clean)."""
    await conn.execute(
        delete(to_device_inbox).where(
            to_device_inbox.c.user_id == user_id, to_device_inbox.c.device_id.in_(device_ids)
        )
    )
    await conn.execute(
        delete(to_device_txns).where(
            to_device_txns.c.user_id == user_id, to_device_txns.c.device_id.in_(device_ids)
        )
    )
