"""Room aliases hosted by this server: `#name:our.server` -> room ID.

Only local aliases are stored; remote ones are resolved by asking their server
over federation. Each row remembers who created it, because the creator may
delete it again without any power in the room.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update

from hearth.storage import dialect
from hearth.storage.db import Database, DbConnection
from hearth.storage.tables import room_aliases


@dataclass(frozen=True, slots=True)
class AliasEntry:
    alias: str
    room_id: str
    creator: str


class AliasesStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, alias: str) -> AliasEntry | None:
        async with self._db.read() as conn:
            row: Any = (
                await conn.execute(
                    select(room_aliases.c.room_id, room_aliases.c.creator).where(
                        room_aliases.c.alias == alias
                    )
                )
            ).first()
        return AliasEntry(alias, row[0], row[1]) if row else None

    async def insert(self, conn: DbConnection, alias: str, room_id: str, creator: str, now_ms: int) -> bool:
        """Map `alias` to `room_id`; False (and nothing written) if the alias is taken."""
        stmt = dialect.insert_ignore(
            conn,
            room_aliases,
            {"alias": alias, "room_id": room_id, "creator": creator, "created_ts": now_ms},
            ["alias"],
        ).returning(room_aliases.c.alias)
        return (await conn.execute(stmt)).first() is not None

    async def create(self, alias: str, room_id: str, creator: str, now_ms: int) -> bool:
        async with self._db.write() as conn:
            return await self.insert(conn, alias, room_id, creator, now_ms)

    async def delete(self, alias: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(delete(room_aliases).where(room_aliases.c.alias == alias))
        return bool(result.rowcount)

    async def for_room(self, room_id: str) -> list[str]:
        async with self._db.read() as conn:
            rows: Any = await conn.execute(
                select(room_aliases.c.alias)
                .where(room_aliases.c.room_id == room_id)
                .order_by(room_aliases.c.alias)
            )
            return [r[0] for r in rows]

    async def rooms_for(self, aliases: Iterable[str]) -> dict[str, str]:
        """The room each of `aliases` points to (unknown aliases are left out)."""
        wanted = list(set(aliases))
        out: dict[str, str] = {}
        if not wanted:
            return out
        async with self._db.read() as conn:
            for i in range(0, len(wanted), 500):
                rows: Any = await conn.execute(
                    select(room_aliases.c.alias, room_aliases.c.room_id).where(
                        room_aliases.c.alias.in_(wanted[i : i + 500])
                    )
                )
                out.update({r[0]: r[1] for r in rows})
        return out

    async def move(self, conn: DbConnection, old_room_id: str, new_room_id: str) -> None:
        """Point every alias of one room at another (room upgrades)."""
        await conn.execute(
            update(room_aliases).where(room_aliases.c.room_id == old_room_id).values(room_id=new_room_id)
        )
