"""Per-user account data, global (room_id "") or per room.

Content is stored as compact JSON text. Every write takes a new position on
the "account_data" stream and stamps the row with it, so sync can ask for
"what changed for this user since position N" with one indexed range query.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, select

from hearth.storage import dialect
from hearth.storage.db import Database, DbConnection
from hearth.storage.encoding import dumps_storable
from hearth.storage.prepared import prepared
from hearth.storage.streams import ACCOUNT_DATA, StreamPositions
from hearth.storage.tables import account_data

GLOBAL = ""

# Read on every /messages page (the ignored-users list): built once.
_GET = prepared(select(account_data.c.content).where(
    account_data.c.user_id == bindparam("user_id"),
    account_data.c.room_id == bindparam("room_id"),
    account_data.c.type == bindparam("type"),
))


@dataclass(frozen=True, slots=True)
class AccountDataEntry:
    room_id: str  # "" for global account data
    type: str
    content: dict[str, Any]
    stream_id: int


class AccountDataStore:
    def __init__(self, db: Database, positions: StreamPositions) -> None:
        self._db = db
        self._positions = positions

    async def put(self, user_id: str, room_id: str, type_: str, content: dict[str, Any]) -> int:
        """Set (replace) one entry; returns its new stream position."""
        async with self._db.write() as conn:
            return await self.put_in(conn, user_id, room_id, type_, content)

    async def put_in(self, conn: DbConnection, user_id: str, room_id: str, type_: str,
                     content: dict[str, Any]) -> int:
        """`put` inside a caller's transaction (e.g. together with another write)."""
        position = await self._positions.next(conn, ACCOUNT_DATA)
        await conn.execute(dialect.upsert(conn, account_data, {
            "user_id": user_id, "room_id": room_id, "type": type_,
            "content": dumps_storable(content), "stream_id": position,
        }, ["user_id", "room_id", "type"]))
        return position

    async def get(self, user_id: str, room_id: str, type_: str) -> dict[str, Any] | None:
        params = {"user_id": user_id, "room_id": room_id, "type": type_}
        async with self._db.read() as conn:
            raw = (await conn.execute(_GET, params)).scalar_one_or_none()
        return json.loads(raw) if raw is not None else None

    async def changed_since(self, user_id: str, since: int, upto: int | None = None
                            ) -> list[AccountDataEntry]:
        """A user's entries written after position `since` (and at most `upto`), oldest first.

        `since=0` gives everything: what an initial sync needs.
        """
        stmt = select(account_data.c.room_id, account_data.c.type, account_data.c.content,
                      account_data.c.stream_id).where(and_(
                          account_data.c.user_id == user_id, account_data.c.stream_id > since))
        if upto is not None:
            stmt = stmt.where(account_data.c.stream_id <= upto)
        async with self._db.read() as conn:
            rows = await conn.execute(stmt.order_by(account_data.c.stream_id))
            return [AccountDataEntry(r.room_id, r.type, json.loads(r.content), r.stream_id) for r in rows]

    async def delete_all(self, conn: DbConnection, user_id: str) -> None:
        """Erase a user's account data (account deactivation with `erase`)."""
        await conn.execute(delete(account_data).where(account_data.c.user_id == user_id))

    def current_position(self) -> int:
        return self._positions.current(ACCOUNT_DATA)
