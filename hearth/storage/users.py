"""Accounts and profiles."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from hearth.storage.db import Database, DbConnection
from hearth.storage.tables import profiles, users


@dataclass(frozen=True, slots=True)
class Account:
    user_id: str
    password_hash: str | None
    created_ts: int
    is_admin: bool
    deactivated: bool


@dataclass(frozen=True, slots=True)
class Profile:
    displayname: str | None
    avatar_url: str | None


class UserExists(Exception):
    pass


class UsersStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, user_id: str, password_hash: str | None, *, created_ts: int,
                     is_admin: bool = False, displayname: str | None = None) -> None:
        """Create the account and its profile; raises UserExists on a taken ID."""
        try:
            async with self._db.write() as conn:
                await conn.execute(insert(users).values(
                    user_id=user_id, password_hash=password_hash, created_ts=created_ts,
                    is_admin=is_admin, is_guest=False, deactivated=False,
                ))
                await conn.execute(insert(profiles).values(user_id=user_id, displayname=displayname))
        except IntegrityError as e:
            raise UserExists(user_id) from e

    async def get(self, user_id: str) -> Account | None:
        async with self._db.read() as conn:
            row = (await conn.execute(
                select(users.c.user_id, users.c.password_hash, users.c.created_ts,
                       users.c.is_admin, users.c.deactivated).where(users.c.user_id == user_id)
            )).first()
        return Account(row.user_id, row.password_hash, row.created_ts, row.is_admin,
                       row.deactivated) if row else None

    async def find_case_insensitive(self, user_id: str) -> list[str]:
        """IDs equal to `user_id` ignoring case: logins accept any capitalisation."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(users.c.user_id).where(func.lower(users.c.user_id) == user_id.lower())
            )
            return [r[0] for r in rows]

    async def exists(self, user_id: str) -> bool:
        async with self._db.read() as conn:
            row = (await conn.execute(select(users.c.user_id).where(users.c.user_id == user_id))).first()
        return row is not None

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        async with self._db.write() as conn:
            await conn.execute(update(users).where(users.c.user_id == user_id)
                               .values(password_hash=password_hash))

    async def set_admin(self, user_id: str, is_admin: bool) -> None:
        async with self._db.write() as conn:
            await conn.execute(update(users).where(users.c.user_id == user_id).values(is_admin=is_admin))

    async def count(self) -> int:
        async with self._db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())

    # --- profiles ----------------------------------------------------------

    async def get_profile(self, user_id: str, *, include_deactivated: bool = False) -> Profile | None:
        """The profile of an account; None for unknown (and, unless asked, deactivated) users."""
        stmt = (select(profiles.c.displayname, profiles.c.avatar_url)
                .select_from(users.join(profiles, profiles.c.user_id == users.c.user_id))
                .where(users.c.user_id == user_id))
        if not include_deactivated:
            stmt = stmt.where(users.c.deactivated.is_(False))
        async with self._db.read() as conn:
            row = (await conn.execute(stmt)).first()
        return Profile(row.displayname, row.avatar_url) if row else None

    async def set_profile_field(self, user_id: str, field: str, value: str | None) -> None:
        """Set `displayname` or `avatar_url` (None clears it)."""
        if field not in ("displayname", "avatar_url"):
            raise ValueError(f"not a profile column: {field}")
        async with self._db.write() as conn:
            await conn.execute(update(profiles).where(profiles.c.user_id == user_id)
                               .values({field: value}))

    # --- deactivation --------------------------------------------------------

    async def deactivate(self, conn: DbConnection, user_id: str, *, erase: bool) -> None:
        """Mark the account deactivated and forget its password, in the caller's transaction.

        With `erase` the profile is cleared and the account is marked erased, so
        its events can be served redacted to those who join its rooms later.
        """
        values: dict[str, object] = {"deactivated": True, "password_hash": None}
        if erase:
            values["erased"] = True
        await conn.execute(update(users).where(users.c.user_id == user_id).values(values))
        if erase:
            await conn.execute(update(profiles).where(profiles.c.user_id == user_id)
                               .values(displayname=None, avatar_url=None))

    async def is_erased(self, user_id: str) -> bool:
        async with self._db.read() as conn:
            value = (await conn.execute(
                select(users.c.erased).where(users.c.user_id == user_id))).scalar_one_or_none()
        return bool(value)
