"""Sync filters uploaded by clients, numbered per user from 0.

Clients tend to upload the same filter on every start, so `add` returns the
existing ID when the user already has a filter with identical JSON instead of
growing the table without bound.
"""

from __future__ import annotations

from sqlalchemy import and_, delete, func, insert, select

from hearth.storage.db import Database, DbConnection
from hearth.storage.tables import filters, users


class FiltersStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, user_id: str, filter_json: str) -> int:
        """Store a filter (already serialised) and return its per-user ID."""
        async with self._db.write() as conn:
            # Lock the owner's row (PostgreSQL; SQLite writers are serial anyway)
            # so concurrent uploads by one user take max+1 one after another.
            await conn.execute(select(users.c.user_id).where(users.c.user_id == user_id).with_for_update())
            existing = (await conn.execute(select(filters.c.filter_id).where(and_(
                filters.c.user_id == user_id, filters.c.filter_json == filter_json,
            )).limit(1))).scalar_one_or_none()
            if existing is not None:
                return int(existing)
            highest = (await conn.execute(
                select(func.max(filters.c.filter_id)).where(filters.c.user_id == user_id)
            )).scalar_one_or_none()
            filter_id = 0 if highest is None else int(highest) + 1
            await conn.execute(insert(filters).values(user_id=user_id, filter_id=filter_id,
                                                      filter_json=filter_json))
        return filter_id

    async def get(self, user_id: str, filter_id: int) -> str | None:
        async with self._db.read() as conn:
            raw = (await conn.execute(select(filters.c.filter_json).where(and_(
                filters.c.user_id == user_id, filters.c.filter_id == filter_id,
            )))).scalar_one_or_none()
        return str(raw) if raw is not None else None

    async def delete_all(self, conn: DbConnection, user_id: str) -> None:
        await conn.execute(delete(filters).where(filters.c.user_id == user_id))
