"""Password login: who an identifier names, whether the password is right, and the limits.

Both `/login` and the UIA `m.login.password` stage come here (`check_password`),
so they accept the same identifiers (`m.id.user` with a localpart or a full
user ID, any capitalisation; the legacy top-level `user`) and count failures
against the same per-account limit.

A wrong password, an unknown user and a deactivated account all give the same
403 with the same message, and an unknown user still costs one hash
verification, so neither the answer nor its timing tells which it was.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hearth.errors import MatrixError, forbidden
from hearth.ratelimit import Ratelimiters
from hearth.storage.users import UsersStore
from hearth.users.passwords import PasswordHasher
from hearth.users.sessions import IssuedTokens, SessionService

_BAD_CREDENTIALS = "Invalid username or password"
# Identifier types the spec defines for addresses; this server binds no 3PIDs,
# so such a login can only fail (403, as the spec says for an unknown 3PID).
_THREEPID_TYPES = ("m.id.thirdparty", "m.id.phone")


class LoginService:
    def __init__(self, *, server_name: str, users: UsersStore, passwords: PasswordHasher,
                 sessions: SessionService, ratelimiters: Ratelimiters) -> None:
        self._server_name = server_name
        self._users = users
        self._passwords = passwords
        self._sessions = sessions
        self._limits = ratelimiters
        self._dummy_hash: str | None = None
        self._dummy_lock = asyncio.Lock()

    async def resolve_user(self, user: str) -> str | None:
        """The stored user ID that a localpart or full user ID names, ignoring case."""
        localpart = user
        if user.startswith("@"):
            localpart, sep, server = user[1:].partition(":")
            if not sep or server.lower() != self._server_name.lower():
                return None
        if not localpart:
            return None
        candidate = f"@{localpart}:{self._server_name}"
        matches = await self._users.find_case_insensitive(candidate)
        if candidate in matches:
            return candidate
        # Several IDs differing only by case (legacy accounts): refuse to guess.
        return matches[0] if len(matches) == 1 else None

    def user_from_identifier(self, identifier: dict[str, Any]) -> str:
        """The `user` string of an `m.id.user` identifier, or the spec's error."""
        kind = identifier.get("type")
        if kind == "m.id.user":
            user = identifier.get("user")
            if not isinstance(user, str) or not user:
                raise MatrixError(400, "M_MISSING_PARAM", "identifier.user is required")
            return user
        if kind in _THREEPID_TYPES:
            raise forbidden(_BAD_CREDENTIALS)
        raise MatrixError(400, "M_UNKNOWN", "Unknown identifier type")

    async def check_password(self, identifier: dict[str, Any], password: str) -> str:
        """The user the credentials prove, or 403 M_FORBIDDEN (429 after too many failures)."""
        user = self.user_from_identifier(identifier)
        user_id = await self.resolve_user(user)
        # Unknown names share a bucket per spelling, so guessing them is limited too.
        limit_key = user_id or user.lower()
        self._limits.failed_login_per_account.peek(limit_key)
        account = await self._users.get(user_id) if user_id else None
        if account is None or account.deactivated or account.password_hash is None:
            await self._passwords.verify(await self._dummy(), password)
            ok = False
        else:
            ok = await self._passwords.verify(account.password_hash, password)
        if not ok or user_id is None:
            self._limits.failed_login_per_account.check(limit_key)
            raise forbidden(_BAD_CREDENTIALS)
        return user_id

    async def login_with_password(self, identifier: dict[str, Any], password: str, *, device_id: str | None,
                                  display_name: str | None, with_refresh: bool,
                                  remote: str | None) -> IssuedTokens:
        """Check the password and open a session on a (new or named) device."""
        self._limits.login_per_address.check(remote or "")
        user_id = await self.check_password(identifier, password)
        self._limits.login_per_account.check(user_id)
        return await self._sessions.issue(user_id, device_id=device_id, display_name=display_name,
                                          with_refresh=with_refresh)

    async def _dummy(self) -> str:
        """A real hash to verify against when there is no account, so timing says nothing."""
        async with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = await self._passwords.hash("hearth-no-such-account")
            return self._dummy_hash
