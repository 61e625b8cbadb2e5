"""Changing a password (after the caller has passed user-interactive auth).

The new hash is stored first, then (by default) every other device is logged
out through `SessionService.logout_all`, which also evicts their tokens from
the in-memory cache. The device that made the request keeps its session, as
the spec asks.
"""

from __future__ import annotations

from hearth.errors import invalid_param
from hearth.storage.users import UsersStore
from hearth.users.passwords import PasswordHasher
from hearth.users.sessions import SessionService

# argon2 hashes any length, but hashing megabytes of "password" is a cheap DoS.
MAX_PASSWORD_LENGTH = 512


class PasswordChangeService:
    def __init__(self, *, users: UsersStore, passwords: PasswordHasher, sessions: SessionService) -> None:
        self._users = users
        self._passwords = passwords
        self._sessions = sessions

    @staticmethod
    def check_new_password(password: str) -> None:
        """Reject a password we would not store, before any auth round-trips."""
        if not password:
            raise invalid_param("new_password must not be empty")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise invalid_param(f"new_password is longer than {MAX_PASSWORD_LENGTH} characters")
        try:
            password.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid_param("new_password must not contain lone surrogates") from None

    async def change(self, user_id: str, new_password: str, *, logout_devices: bool,
                     keep_device: str | None) -> None:
        self.check_new_password(new_password)
        await self._users.set_password_hash(user_id, await self._passwords.hash(new_password))
        if logout_devices:
            await self._sessions.logout_all(user_id, except_device=keep_device)
