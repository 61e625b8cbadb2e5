"""User-interactive auth sessions (the `uia_sessions` table).

A session row records which stages a client has completed for one purpose.
Every method takes the caller's connection: the UIA engine reads, updates and
consumes a session in the same transaction as any side effect of a stage (a
registration token's `pending` count), so the two never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update

from hearth.storage.db import DbConnection
from hearth.storage.tables import uia_sessions


@dataclass(slots=True)
class UIASessionRow:
    session_id: str
    created_ts: int
    purpose: str
    completed: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def _row(r: Any) -> UIASessionRow:
    return UIASessionRow(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]))


_COLS = (uia_sessions.c.session_id, uia_sessions.c.created_ts, uia_sessions.c.purpose,
         uia_sessions.c.completed_stages, uia_sessions.c.data)


class UIASessionsStore:
    async def insert(self, conn: DbConnection, row: UIASessionRow) -> None:
        await conn.execute(insert(uia_sessions).values(
            session_id=row.session_id, created_ts=row.created_ts, purpose=row.purpose,
            completed_stages=json.dumps(row.completed), data=json.dumps(row.data),
        ))

    async def get(self, conn: DbConnection, session_id: str) -> UIASessionRow | None:
        r = (await conn.execute(select(*_COLS).where(uia_sessions.c.session_id == session_id))).first()
        return _row(r) if r else None

    async def get_for_update(self, conn: DbConnection, session_id: str) -> UIASessionRow | None:
        """The session, row-locked on PostgreSQL (SQLite's write lock already serialises)."""
        r = (await conn.execute(
            select(*_COLS).where(uia_sessions.c.session_id == session_id).with_for_update()
        )).first()
        return _row(r) if r else None

    async def save(self, conn: DbConnection, row: UIASessionRow) -> None:
        await conn.execute(update(uia_sessions).where(uia_sessions.c.session_id == row.session_id).values(
            completed_stages=json.dumps(row.completed), data=json.dumps(row.data),
        ))

    async def consume(self, conn: DbConnection, session_id: str) -> bool:
        """Delete the session; False when another request consumed it first."""
        result = await conn.execute(delete(uia_sessions).where(uia_sessions.c.session_id == session_id))
        return bool(result.rowcount)

    async def delete_created_before(self, conn: DbConnection, before_ts: int) -> list[UIASessionRow]:
        """Remove expired sessions and return them, so stage side effects can be undone."""
        rows = [_row(r) for r in await conn.execute(
            select(*_COLS).where(uia_sessions.c.created_ts < before_ts).with_for_update())]
        if rows:
            await conn.execute(delete(uia_sessions).where(
                uia_sessions.c.session_id.in_([r.session_id for r in rows])))
        return rows
