"""Creating accounts: username rules, reserved names, the account row and profile.

Every way an account comes to exist (client registration, the shared-secret
admin API, the CLI) goes through `AccountService.create_account`, so the rules
are the same everywhere.
"""

from __future__ import annotations

import re

from hearth.clock import Clock
from hearth.errors import MatrixError
from hearth.storage.users import UserExists, UsersStore
from hearth.users.passwords import PasswordHasher

# The spec's grammar for localparts of new user IDs (appendices: user identifiers).
_LOCALPART = re.compile(r"^[a-z0-9._=\-/+]+$")
MAX_USER_ID_LENGTH = 255


class AccountService:
    def __init__(self, *, server_name: str, users: UsersStore, passwords: PasswordHasher, clock: Clock,
                 reserved_usernames: list[str]) -> None:
        self._server_name = server_name
        self._users = users
        self._passwords = passwords
        self._clock = clock
        self._reserved = {r.lower() for r in reserved_usernames}

    def user_id_for(self, localpart: str) -> str:
        return f"@{localpart}:{self._server_name}"

    def check_localpart(self, localpart: str) -> str:
        """The user ID a localpart would give, or M_INVALID_USERNAME / M_EXCLUSIVE."""
        if not localpart or not _LOCALPART.match(localpart):
            raise MatrixError(400, "M_INVALID_USERNAME",
                              "User ID may only contain a-z, 0-9, '.', '_', '=', '-', '/' and '+'")
        user_id = self.user_id_for(localpart)
        if len(user_id.encode()) > MAX_USER_ID_LENGTH:
            raise MatrixError(400, "M_INVALID_USERNAME", "User ID is too long")
        if localpart in self._reserved:
            raise MatrixError(400, "M_EXCLUSIVE", "This user ID is reserved")
        return user_id

    async def check_available(self, localpart: str) -> str:
        user_id = self.check_localpart(localpart)
        if await self._users.find_case_insensitive(user_id):
            raise MatrixError(400, "M_USER_IN_USE", "User ID already taken")
        return user_id

    async def create_account(self, localpart: str, password: str | None, *, admin: bool = False,
                             displayname: str | None = None) -> str:
        """Create an account; the display name defaults to the localpart, as clients expect."""
        user_id = await self.check_available(localpart)
        password_hash = await self._passwords.hash(password) if password is not None else None
        try:
            await self._users.create(user_id, password_hash, created_ts=self._clock.time_ms(),
                                     is_admin=admin, displayname=displayname or localpart)
        except UserExists:
            raise MatrixError(400, "M_USER_IN_USE", "User ID already taken") from None
        return user_id
