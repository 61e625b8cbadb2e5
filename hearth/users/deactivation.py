"""Account deactivation: the account can never be used again.

One transaction marks the account deactivated and forgets its password hash
(and with `erase`, marks it erased and deletes its profile, account data and
filters); then every device is logged out through `SessionService.logout_all`,
which evicts the tokens from the in-memory cache, so the user's tokens die
before the response is sent. Marking first means a login racing with deactivation is refused by the
login check on `Account.deactivated` rather than left with a fresh token.

Then the account stops taking part: its pushers are deleted (nothing is
pushed to a dead account's phones) and it leaves every room it is joined to,
rejects its pending invites and retracts its knocks, one room at a time; a
room that fails is logged and skipped. These steps follow the commit, so a
crash between them leaves the account deactivated but still a member of some
rooms or with pushers: `resume`, which the server runs in the background at
every start, finds such accounts and finishes the job (both steps only act on
what is left, so running them again is harmless).

With `erase` the spec also wants later joiners of the user's rooms to see
their events redacted. The request is recorded (`UsersStore.is_erased`) for
the room server to apply when it serves events; it does not do so yet. Third-
party identifiers are never stored by this server, so there is nothing to
unbind from an identity server.
"""

from __future__ import annotations

import logging
from typing import Protocol

from hearth.storage.account_data import AccountDataStore
from hearth.storage.db import Database
from hearth.storage.filters import FiltersStore
from hearth.storage.users import UsersStore
from hearth.users.sessions import SessionService

log = logging.getLogger(__name__)


class DeactivationRooms(Protocol):
    """What deactivation needs from the room server (`hearth.rooms.membership`)."""

    async def leave_all(self, user_id: str) -> list[str]:
        """Leave every room, reject every invite, retract every knock; failures are skipped."""
        ...

    async def deactivated_members(self) -> list[str]:
        """Deactivated accounts that `leave_all` has not finished with."""
        ...


class DeactivationPushers(Protocol):
    """What deactivation needs from push delivery (`hearth.push.pusher`)."""

    async def delete_all(self, user_id: str) -> None: ...

    async def deactivated_owners(self) -> list[str]: ...


class DeactivationService:
    def __init__(self, *, db: Database, users: UsersStore, account_data: AccountDataStore,
                 filters: FiltersStore, sessions: SessionService, rooms: DeactivationRooms,
                 pushers: DeactivationPushers) -> None:
        self._db = db
        self._users = users
        self._account_data = account_data
        self._filters = filters
        self._sessions = sessions
        self._rooms = rooms
        self._pushers = pushers

    async def deactivate(self, user_id: str, *, erase: bool) -> None:
        async with self._db.write() as conn:
            await self._users.deactivate(conn, user_id, erase=erase)
            if erase:
                await self._account_data.delete_all(conn, user_id)
                await self._filters.delete_all(conn, user_id)
        await self._sessions.logout_all(user_id)
        await self._leave_everything(user_id)

    async def resume(self) -> list[str]:
        """Finish deactivations a crash cut short; returns the accounts it finished."""
        with_pushers = await self._pushers.deactivated_owners()
        in_rooms = await self._rooms.deactivated_members()
        pending = sorted(set(with_pushers) | set(in_rooms))
        for user_id in pending:
            log.info("Finishing the deactivation of %s", user_id)
            await self._leave_everything(user_id)
        return pending

    async def _leave_everything(self, user_id: str) -> None:
        await self._pushers.delete_all(user_id)
        await self._rooms.leave_all(user_id)
