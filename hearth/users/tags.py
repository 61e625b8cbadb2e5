"""Room tags (tags.yaml): the `m.tag` room account data, edited one tag at a time.

Tags are stored as the per-room account data entry `m.tag` with content
`{"tags": {tag: {"order": 0.5, ...}}}`, so they reach clients through sync
like any room account data (and take a new account-data stream position on
every change). Only the owner reads or changes them (403 otherwise); tags do
not require membership of the room, as account data does not.

Each change is a read-modify-write of one entry; a per-user lock serialises
a user's concurrent tag changes so none is lost.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from typing import Any

from hearth.errors import forbidden, invalid_param
from hearth.storage.account_data import AccountDataStore
from hearth.storage.encoding import is_storable_text
from hearth.users.account_data import AccountDataService

TAG_TYPE = "m.tag"
MAX_TAG_BYTES = 255


class TagsService:
    def __init__(self, *, account_data: AccountDataService, store: AccountDataStore) -> None:
        self._account_data = account_data
        self._store = store
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, user_id: str) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[user_id] = lock
        return lock

    async def _content(self, user_id: str, room_id: str) -> dict[str, Any]:
        content = await self._store.get(user_id, room_id, TAG_TYPE)
        return content if isinstance(content, dict) else {}

    async def get(self, requester: str, user_id: str, room_id: str) -> dict[str, Any]:
        """{"tags": {...}} for the room (empty when it has none)."""
        _check_owner(requester, user_id, "read")
        tags = (await self._content(user_id, room_id)).get("tags")
        return {"tags": tags if isinstance(tags, dict) else {}}

    async def put(self, requester: str, user_id: str, room_id: str, tag: str, body: dict[str, Any]) -> None:
        """Add or replace one tag; `body` is the tag's object (e.g. {"order": 0.25})."""
        _check_owner(requester, user_id, "change")
        check_tag(tag)
        order = body.get("order")
        if order is not None and (
            isinstance(order, bool) or not isinstance(order, int | float) or not math.isfinite(order)
            or not 0 <= order <= 1
        ):
            raise invalid_param("order must be a number between 0 and 1")
        async with self._lock(user_id):
            content = await self._content(user_id, room_id)
            tags = content.get("tags")
            tags = dict(tags) if isinstance(tags, dict) else {}
            tags[tag] = body
            await self._account_data.put(
                user_id, user_id, TAG_TYPE, {**content, "tags": tags}, room_id=room_id
            )

    async def delete(self, requester: str, user_id: str, room_id: str, tag: str) -> None:
        """Remove one tag; removing a tag the room does not have is not an error."""
        _check_owner(requester, user_id, "change")
        async with self._lock(user_id):
            content = await self._content(user_id, room_id)
            tags = content.get("tags")
            if not isinstance(tags, dict) or tag not in tags:
                return
            remaining = {k: v for k, v in tags.items() if k != tag}
            await self._account_data.put(
                user_id, user_id, TAG_TYPE, {**content, "tags": remaining}, room_id=room_id
            )


def check_tag(tag: str) -> None:
    if not tag or len(tag.encode()) > MAX_TAG_BYTES or not is_storable_text(tag):
        raise invalid_param(f"A tag must be 1-{MAX_TAG_BYTES} bytes of text")


def _check_owner(requester: str, user_id: str, verb: str) -> None:
    if requester != user_id:
        raise forbidden(f"Cannot {verb} tags for other users")
