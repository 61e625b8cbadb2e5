"""Registration tokens (the `registration_tokens` table).

A token is usable while it has not expired and `pending + completed` is below
`uses_allowed` (NULL: unlimited). `pending` counts registrations that have
passed the token stage but not finished; `reserve` takes a use with one
conditional UPDATE, so two racing registrations cannot both take the last use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from hearth.storage.db import Database, DbConnection
from hearth.storage.tables import registration_tokens as t


@dataclass(frozen=True, slots=True)
class RegistrationToken:
    token: str
    uses_allowed: int | None
    pending: int
    completed: int
    expiry_ts: int | None

    def usable(self, now_ms: int) -> bool:
        if self.expiry_ts is not None and self.expiry_ts <= now_ms:
            return False
        return self.uses_allowed is None or self.pending + self.completed < self.uses_allowed


class TokenExists(Exception):
    pass


_COLS = (t.c.token, t.c.uses_allowed, t.c.pending, t.c.completed, t.c.expiry_ts)


def _token(r: Any) -> RegistrationToken:
    return RegistrationToken(r[0], r[1], r[2], r[3], r[4])


def _usable(now_ms: int) -> ColumnElement[bool]:
    return and_(
        or_(t.c.expiry_ts.is_(None), t.c.expiry_ts > now_ms),
        or_(t.c.uses_allowed.is_(None), t.c.pending + t.c.completed < t.c.uses_allowed),
    )


class RegistrationTokensStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, token: str, *, uses_allowed: int | None,
                     expiry_ts: int | None) -> RegistrationToken:
        try:
            async with self._db.write() as conn:
                await conn.execute(insert(t).values(token=token, uses_allowed=uses_allowed, pending=0,
                                                    completed=0, expiry_ts=expiry_ts))
        except IntegrityError as e:
            raise TokenExists(token) from e
        return RegistrationToken(token, uses_allowed, 0, 0, expiry_ts)

    async def get(self, token: str) -> RegistrationToken | None:
        async with self._db.read() as conn:
            r = (await conn.execute(select(*_COLS).where(t.c.token == token))).first()
        return _token(r) if r else None

    async def list_tokens(self, *, valid: bool | None = None, now_ms: int = 0) -> list[RegistrationToken]:
        """All tokens, or only the (un)usable ones at `now_ms`."""
        stmt = select(*_COLS).order_by(t.c.token)
        if valid is True:
            stmt = stmt.where(_usable(now_ms))
        elif valid is False:
            stmt = stmt.where(~_usable(now_ms))
        async with self._db.read() as conn:
            return [_token(r) for r in await conn.execute(stmt)]

    async def update(self, token: str, *, uses_allowed: int | None, expiry_ts: int | None,
                     set_uses: bool, set_expiry: bool) -> RegistrationToken | None:
        values: dict[str, int | None] = {}
        if set_uses:
            values["uses_allowed"] = uses_allowed
        if set_expiry:
            values["expiry_ts"] = expiry_ts
        async with self._db.write() as conn:
            if values:
                await conn.execute(update(t).where(t.c.token == token).values(**values))
            r = (await conn.execute(select(*_COLS).where(t.c.token == token))).first()
        return _token(r) if r else None

    async def delete(self, token: str) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(delete(t).where(t.c.token == token))
        return bool(result.rowcount)

    # --- use accounting, inside the caller's transaction --------------------

    async def reserve(self, conn: DbConnection, token: str, now_ms: int) -> bool:
        """Take one pending use of a usable token; False if it is unknown, expired or used up."""
        result = await conn.execute(
            update(t).where(and_(t.c.token == token, _usable(now_ms))).values(pending=t.c.pending + 1))
        return bool(result.rowcount)

    async def release(self, conn: DbConnection, token: str) -> None:
        """Give back a pending use (the registration was abandoned or failed)."""
        await conn.execute(update(t).where(t.c.token == token).values(
            pending=case((t.c.pending > 0, t.c.pending - 1), else_=0)))

    async def complete(self, token: str) -> None:
        """A registration that reserved a use has finished: pending becomes completed."""
        async with self._db.write() as conn:
            await conn.execute(update(t).where(t.c.token == token).values(
                pending=case((t.c.pending > 0, t.c.pending - 1), else_=0),
                completed=t.c.completed + 1))

    async def release_now(self, token: str) -> None:
        async with self._db.write() as conn:
            await self.release(conn, token)
