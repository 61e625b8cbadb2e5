"""Devices and the access/refresh tokens that belong to them.

Tokens are stored only as SHA-256 hashes of the secret. A token row references
its device, so deleting a device deletes its tokens in the same statement.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, delete, insert, select, update

from hearth.storage import dialect
from hearth.storage.db import Database, DbConnection
from hearth.storage.tables import access_tokens, devices, refresh_tokens
from hearth.storage.to_device import delete_for_devices


@dataclass(frozen=True, slots=True)
class Device:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ts: int | None
    last_seen_ip: str | None


@dataclass(frozen=True, slots=True)
class TokenOwner:
    """Who an access token belongs to, and until when it is valid."""

    user_id: str
    device_id: str
    expires_ts: int | None
    token_id: int


@dataclass(frozen=True, slots=True)
class RefreshTokenRow:
    id: int
    user_id: str
    device_id: str


_DEVICE_COLS = (devices.c.user_id, devices.c.device_id, devices.c.display_name,
                devices.c.last_seen_ts, devices.c.last_seen_ip)


class DevicesStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- devices ---------------------------------------------------------

    async def ensure_device(self, conn: DbConnection, user_id: str, device_id: str,
                            display_name: str | None, now_ms: int) -> None:
        """Create the device if it is new; a re-login keeps its existing name."""
        await conn.execute(dialect.insert_ignore(conn, devices, {
            "user_id": user_id, "device_id": device_id, "display_name": display_name,
            "created_ts": now_ms,
        }, ["user_id", "device_id"]))

    async def list_for_user(self, user_id: str) -> list[Device]:
        async with self._db.read() as conn:
            rows = await conn.execute(select(*_DEVICE_COLS).where(devices.c.user_id == user_id)
                                      .order_by(devices.c.device_id))
            return [Device(*r) for r in rows]

    async def get(self, user_id: str, device_id: str) -> Device | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(*_DEVICE_COLS).where(
                and_(devices.c.user_id == user_id, devices.c.device_id == device_id)))).first()
        return Device(*row) if row else None

    async def rename(self, user_id: str, device_id: str, display_name: str | None) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(update(devices).where(
                and_(devices.c.user_id == user_id, devices.c.device_id == device_id)
            ).values(display_name=display_name))
        return bool(result.rowcount)

    async def delete(self, user_id: str, device_ids: list[str]) -> None:
        """Delete devices and (by cascade) their tokens."""
        if not device_ids:
            return
        async with self._db.write() as conn:
            await self._delete_tokens(conn, user_id, device_ids)
            await conn.execute(delete(devices).where(
                and_(devices.c.user_id == user_id, devices.c.device_id.in_(device_ids))))

    async def record_seen(self, user_id: str, device_id: str, ts: int, ip: str | None) -> None:
        async with self._db.write() as conn:
            await conn.execute(update(devices).where(
                and_(devices.c.user_id == user_id, devices.c.device_id == device_id)
            ).values(last_seen_ts=ts, last_seen_ip=ip))

    # --- tokens ----------------------------------------------------------

    async def add_tokens(self, conn: DbConnection, *, user_id: str, device_id: str,
                         access_hash: bytes, refresh_hash: bytes | None, expires_ts: int | None,
                         now_ms: int) -> None:
        refresh_id = None
        if refresh_hash is not None:
            refresh_id = (await conn.execute(insert(refresh_tokens).values(
                token_hash=refresh_hash, user_id=user_id, device_id=device_id, created_ts=now_ms,
            ).returning(refresh_tokens.c.id))).scalar_one()
        await conn.execute(insert(access_tokens).values(
            token_hash=access_hash, user_id=user_id, device_id=device_id, created_ts=now_ms,
            expires_ts=expires_ts, refresh_token_id=refresh_id,
        ))

    async def token_owner(self, access_hash: bytes) -> TokenOwner | None:
        async with self._db.read() as conn:
            row = (await conn.execute(select(
                access_tokens.c.user_id, access_tokens.c.device_id, access_tokens.c.expires_ts,
                access_tokens.c.id,
            ).where(access_tokens.c.token_hash == access_hash))).first()
        return TokenOwner(*row) if row else None

    async def take_refresh_token(self, conn: DbConnection, refresh_hash: bytes) -> RefreshTokenRow | None:
        """Consume a refresh token: it and the access tokens issued with it die."""
        row = (await conn.execute(select(
            refresh_tokens.c.id, refresh_tokens.c.user_id, refresh_tokens.c.device_id,
        ).where(refresh_tokens.c.token_hash == refresh_hash))).first()
        if row is None:
            return None
        await conn.execute(delete(access_tokens).where(access_tokens.c.refresh_token_id == row[0]))
        await conn.execute(delete(refresh_tokens).where(refresh_tokens.c.id == row[0]))
        return RefreshTokenRow(*row)

    async def delete_token(self, access_hash: bytes) -> None:
        async with self._db.write() as conn:
            await conn.execute(delete(access_tokens).where(access_tokens.c.token_hash == access_hash))

    async def token_hashes_for(self, user_id: str, device_ids: list[str] | None = None) -> list[bytes]:
        """Hashes of a user's live access tokens (to evict them from caches)."""
        stmt = select(access_tokens.c.token_hash).where(access_tokens.c.user_id == user_id)
        if device_ids is not None:
            stmt = stmt.where(access_tokens.c.device_id.in_(device_ids))
        async with self._db.read() as conn:
            return [r[0] for r in await conn.execute(stmt)]

    async def _delete_tokens(self, conn: DbConnection, user_id: str, device_ids: list[str]) -> None:
        # SQLite only cascades with foreign_keys=ON; delete explicitly so the
        # outcome never depends on a pragma.
        await conn.execute(delete(access_tokens).where(and_(
            access_tokens.c.user_id == user_id, access_tokens.c.device_id.in_(device_ids))))
        await conn.execute(delete(refresh_tokens).where(and_(
            refresh_tokens.c.user_id == user_id, refresh_tokens.c.device_id.in_(device_ids))))
        # A deleted device's to-device inbox goes with it.
        await delete_for_devices(conn, user_id, device_ids)

    async def delete_all_devices(self, user_id: str, *, except_device: str | None = None) -> list[str]:
        """Log a user out everywhere (but `except_device`); returns the removed devices."""
        async with self._db.write() as conn:
            stmt = select(devices.c.device_id).where(devices.c.user_id == user_id)
            if except_device is not None:
                stmt = stmt.where(devices.c.device_id != except_device)
            ids = [r[0] for r in await conn.execute(stmt)]
            if ids:
                await self._delete_tokens(conn, user_id, ids)
                await conn.execute(delete(devices).where(
                    and_(devices.c.user_id == user_id, devices.c.device_id.in_(ids))))
        return ids
