"""Account data: per-user settings, global or per room, that clients sync.

Only the owner reads or writes their account data. Types the server manages
itself (`m.fully_read`, set through read markers, and `m.push_rules`, set
through the push rules API) are refused here with 405 M_BAD_JSON as the spec
says; they can still be read.

Room account data is not yet checked against the user's membership: rooms do
not exist yet. The room ID's form is checked so junk never reaches the table.
"""

from __future__ import annotations

from typing import Any

from hearth.errors import MatrixError, bad_json, forbidden, invalid_param, not_found
from hearth.notifier import Notifier
from hearth.storage.account_data import GLOBAL, AccountDataStore
from hearth.storage.encoding import is_encodable_json, is_storable_text

SERVER_MANAGED_TYPES = frozenset({"m.fully_read", "m.push_rules"})
MAX_TYPE_LENGTH = 255


class AccountDataService:
    def __init__(self, *, store: AccountDataStore, notifier: Notifier) -> None:
        self._store = store
        self._notifier = notifier

    async def get(self, requester: str, user_id: str, type_: str, room_id: str = GLOBAL) -> dict[str, Any]:
        _check_owner(requester, user_id, "read")
        content = await self._store.get(user_id, room_id, type_)
        if content is None:
            raise not_found("Room account data not found" if room_id else "Account data not found")
        return content

    async def put(self, requester: str, user_id: str, type_: str, content: dict[str, Any],
                  room_id: str = GLOBAL) -> int:
        """Store one entry; returns its position on the account data stream."""
        self.check_writable(requester, user_id, type_)
        if not is_encodable_json(content):
            raise bad_json("Content contains a lone surrogate, which is not valid Unicode")
        position = await self._store.put(user_id, room_id, type_, content)
        self._notifier.notify_user(user_id)
        return position

    @staticmethod
    def check_writable(requester: str, user_id: str, type_: str) -> None:
        """Everything about a write that does not depend on its content (check before reading it)."""
        _check_owner(requester, user_id, "change")
        if type_ in SERVER_MANAGED_TYPES:
            raise MatrixError(405, "M_BAD_JSON", f"Cannot set {type_} through this API")
        if not type_ or len(type_) > MAX_TYPE_LENGTH or not is_storable_text(type_):
            raise invalid_param(f"Account data type must be 1-{MAX_TYPE_LENGTH} characters")


def _check_owner(requester: str, user_id: str, verb: str) -> None:
    if requester != user_id:
        raise forbidden(f"Cannot {verb} account data for other users")
