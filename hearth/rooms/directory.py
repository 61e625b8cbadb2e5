"""The published room directory: which rooms are listed, and the listing itself.

Serves (through hearth.api.client.directory) `GET/PUT /directory/list/room/{roomId}`
and `GET/POST /publicRooms`.

Publishing is a flag on the room (`rooms.is_public`), separate from the join
rule (a knockable room may be listed; a listed room need not be joinable).
Changing it needs the power to send `m.room.canonical_alias` as a joined
member, or a server admin: the people who curate how the room presents itself.

Listing: every published room this server knows, filtered by
`generic_search_term` (case-insensitive substring of name, topic or canonical
alias) and `room_types`, ordered by joined members (most first) then room ID.
Summaries come from `RoomSummaries` (cached per room until its state changes),
so a listing costs one indexed query for the published rooms plus batched
reads for those that changed. Pagination tokens name the sort key of the
last (next_batch) or first (prev_batch) room of a page, so pages stay
consistent while rooms are added or change size. `total_room_count_estimate`
counts the rooms matching the filter.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from typing import Any

from hearth.core.power_levels import PowerLevels
from hearth.errors import forbidden, invalid_param, not_found
from hearth.rooms.summary import CREATE_KEY, POWER_LEVELS_KEY, RoomSummaries, RoomSummary, StateReader
from hearth.storage.db import Database
from hearth.storage.directory import DirectoryStore
from hearth.storage.rooms import RoomsStore
from hearth.storage.users import UsersStore

DEFAULT_LIMIT = 100
MAX_LIMIT = 500

SortKey = tuple[int, str]  # (-num_joined_members, room_id)


def _sort_key(summary: RoomSummary) -> SortKey:
    return (-summary.num_joined_members, summary.room_id)


def _token(direction: str, key: SortKey) -> str:
    raw = json.dumps([direction, -key[0], key[1]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_token(token: str) -> tuple[str, SortKey]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        direction, joined, room_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error):
        raise invalid_param("Invalid pagination token") from None
    if direction not in ("n", "p") or type(joined) is not int or not isinstance(room_id, str):
        raise invalid_param("Invalid pagination token")
    return direction, (-joined, room_id)


class RoomDirectory:
    def __init__(
        self,
        *,
        db: Database,
        rooms: RoomsStore,
        directory: DirectoryStore,
        summaries: RoomSummaries,
        reader: StateReader,
        users: UsersStore,
    ) -> None:
        self._db = db
        self._rooms = rooms
        self._directory = directory
        self._summaries = summaries
        self._reader = reader
        self._users = users

    async def visibility(self, room_id: str) -> str:
        async with self._db.read() as conn:
            row = (await self._directory.rooms(conn, [room_id])).get(room_id)
        if row is None:
            raise not_found(f"Room {room_id} not found")
        return "public" if row.is_public else "private"

    async def set_visibility(self, user_id: str, room_id: str, visibility: str) -> None:
        room = await self._rooms.get(room_id)
        if room is None:
            raise not_found(f"Room {room_id} not found")
        if not await self._is_admin(user_id):
            membership = await self._rooms.membership(room.room_nid, user_id)
            state = await self._reader.room_events(room.room_nid, [CREATE_KEY, POWER_LEVELS_KEY])
            power = PowerLevels(state.get(CREATE_KEY), state.get(POWER_LEVELS_KEY))
            if (
                membership is None
                or membership[0] != "join"
                or power.user_level(user_id) < power.event_level("m.room.canonical_alias", True)
            ):
                raise forbidden("You may not change this room's visibility in the directory")
        await self._rooms.set_public(room_id, visibility == "public")

    async def public_rooms(
        self,
        *,
        limit: int | None = None,
        since: str | None = None,
        search_term: str | None = None,
        room_types: list[str | None] | None = None,
    ) -> dict[str, Any]:
        """One page of the directory, filtered and paginated."""
        limit = min(limit or DEFAULT_LIMIT, MAX_LIMIT)
        direction, anchor = _parse_token(since) if since else ("n", None)
        async with self._db.read() as conn:
            rows = await self._directory.public_rooms(conn)
            summaries = list((await self._summaries.for_rows(conn, rows)).values())
        term = search_term.strip().lower() if search_term else ""
        if term:
            summaries = [s for s in summaries if s.matches(term)]
        if room_types:
            wanted = set(room_types)
            summaries = [s for s in summaries if s.room_type in wanted]
        summaries.sort(key=_sort_key)
        keys = [_sort_key(s) for s in summaries]
        if anchor is None:
            start, end = 0, min(limit, len(summaries))
        elif direction == "n":
            start = bisect.bisect_right(keys, anchor)
            end = min(start + limit, len(summaries))
        else:
            end = bisect.bisect_left(keys, anchor)
            start = max(0, end - limit)
        page = summaries[start:end]
        out: dict[str, Any] = {
            "chunk": [s.chunk() for s in page],
            "total_room_count_estimate": len(summaries),
        }
        if end < len(summaries) and page:
            out["next_batch"] = _token("n", keys[end - 1])
        if start > 0:
            out["prev_batch"] = _token("p", keys[start])
        return out

    async def _is_admin(self, user_id: str) -> bool:
        account = await self._users.get(user_id)
        return account is not None and account.is_admin
