"""Access and refresh tokens: issuing them at login and checking them per request.

Every authenticated request pays for a token check, so the owner of a token is
cached in memory (keyed by the token's hash) after its first lookup. Every path
that kills tokens (logout, device deletion, password change, deactivation,
refresh) evicts them here, in this process, before it returns.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from hearth.clock import Clock, IdGenerator
from hearth.errors import MatrixError, unknown_token
from hearth.storage.db import Database
from hearth.storage.devices import DevicesStore, TokenOwner

ACCESS_PREFIX = "hat_"
REFRESH_PREFIX = "hrt_"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class Requester:
    """The authenticated user and device behind a request."""

    user_id: str
    device_id: str
    access_token_hash: bytes


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    user_id: str
    device_id: str
    access_token: str
    refresh_token: str | None
    expires_in_ms: int | None


class SessionService:
    _CACHE_SIZE = 100_000

    def __init__(self, *, db: Database, devices: DevicesStore, clock: Clock, ids: IdGenerator,
                 refreshable_lifetime_ms: int) -> None:
        self._db = db
        self._devices = devices
        self._clock = clock
        self._ids = ids
        self._refreshable_lifetime_ms = refreshable_lifetime_ms
        self._owners: OrderedDict[bytes, TokenOwner] = OrderedDict()
        # A device's cached token hashes: a list, as a device has one or two
        # tokens and every signed-in device keeps an entry (a set is 4x the size).
        self._cached_by_device: dict[tuple[str, str], list[bytes]] = {}

    async def issue(self, user_id: str, *, device_id: str | None, display_name: str | None,
                    with_refresh: bool) -> IssuedTokens:
        """Create (or reuse) a device and give it a fresh access token."""
        device_id = device_id or self._ids.device_id()
        now = self._clock.time_ms()
        access = self._ids.secret(ACCESS_PREFIX)
        refresh = self._ids.secret(REFRESH_PREFIX) if with_refresh else None
        expires_ts = now + self._refreshable_lifetime_ms if with_refresh else None
        async with self._db.write() as conn:
            await self._devices.ensure_device(conn, user_id, device_id, display_name, now)
            await self._devices.add_tokens(
                conn, user_id=user_id, device_id=device_id, access_hash=token_hash(access),
                refresh_hash=token_hash(refresh) if refresh else None, expires_ts=expires_ts, now_ms=now,
            )
        return IssuedTokens(user_id, device_id, access, refresh,
                            self._refreshable_lifetime_ms if with_refresh else None)

    async def refresh(self, refresh_token: str) -> IssuedTokens:
        """Swap a refresh token for a new pair; the old pair stops working."""
        now = self._clock.time_ms()
        access = self._ids.secret(ACCESS_PREFIX)
        refresh = self._ids.secret(REFRESH_PREFIX)
        async with self._db.write() as conn:
            old = await self._devices.take_refresh_token(conn, token_hash(refresh_token))
            if old is None:
                raise unknown_token("Unknown refresh token")
            await self._devices.add_tokens(
                conn, user_id=old.user_id, device_id=old.device_id, access_hash=token_hash(access),
                refresh_hash=token_hash(refresh), expires_ts=now + self._refreshable_lifetime_ms, now_ms=now,
            )
        self._evict_user(old.user_id, old.device_id)
        return IssuedTokens(old.user_id, old.device_id, access, refresh, self._refreshable_lifetime_ms)

    async def authenticate(self, token: str, *, allow_expired: bool = False) -> Requester:
        """The requester for an access token, or M_UNKNOWN_TOKEN.

        `allow_expired` accepts an expired refreshable token: logging out must
        still work for a client whose token ran out.
        """
        h = token_hash(token)
        owner = self._owners.get(h)
        if owner is None:
            owner = await self._devices.token_owner(h)
            if owner is None:
                raise unknown_token()
            self._remember(h, owner)
        if not allow_expired and owner.expires_ts is not None and owner.expires_ts <= self._clock.time_ms():
            # An expired refreshable token: the client should refresh, not log in again.
            raise unknown_token("Access token has expired", soft_logout=True)
        return Requester(owner.user_id, owner.device_id, h)

    async def logout(self, requester: Requester) -> None:
        """End this session: the device and its tokens go."""
        await self.delete_devices(requester.user_id, [requester.device_id])

    async def delete_devices(self, user_id: str, device_ids: list[str]) -> None:
        await self._devices.delete(user_id, device_ids)
        for device_id in device_ids:
            self._evict_user(user_id, device_id)

    async def logout_all(self, user_id: str, *, except_device: str | None = None) -> list[str]:
        removed = await self._devices.delete_all_devices(user_id, except_device=except_device)
        for device_id in removed:
            self._evict_user(user_id, device_id)
        return removed

    def _remember(self, h: bytes, owner: TokenOwner) -> None:
        self._owners[h] = owner
        hashes = self._cached_by_device.setdefault((owner.user_id, owner.device_id), [])
        if h not in hashes:
            hashes.append(h)
        if len(self._owners) > self._CACHE_SIZE:
            old_h, old = self._owners.popitem(last=False)
            key = (old.user_id, old.device_id)
            old_hashes = self._cached_by_device.get(key)
            if old_hashes is not None and old_h in old_hashes:
                old_hashes.remove(old_h)
                if not old_hashes:
                    del self._cached_by_device[key]

    def _evict_user(self, user_id: str, device_id: str) -> None:
        for h in self._cached_by_device.pop((user_id, device_id), ()):
            self._owners.pop(h, None)


def require_token_value(auth_header: str | None, query_token: str | None) -> str:
    """The access token from `Authorization: Bearer` or the deprecated query parameter."""
    if auth_header is not None:
        scheme, _, value = auth_header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise MatrixError(401, "M_MISSING_TOKEN", "Authorization header is not a Bearer token")
        return value.strip()
    if query_token:
        return query_token
    raise MatrixError(401, "M_MISSING_TOKEN", "Missing access token")
