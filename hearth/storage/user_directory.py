"""Who the user directory may show a searcher, matched against a search term.

Visible to a searcher (users.yaml): users who share a joined room with
them, and users joined to rooms with a public join rule or world-readable
history (`room_publicity`, kept by `hearth.storage.search.index_event`);
optionally every active local user. Deactivated local users never show.
Matching is case-insensitive on the user ID and the local profile's display
name: every word of the term must occur in one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, union

from hearth.storage.db import DbConnection
from hearth.storage.tables import profiles, room_members, room_publicity, users


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    user_id: str
    display_name: str | None
    avatar_url: str | None


def _like(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class UserDirectoryStore:
    async def search(
        self, conn: DbConnection, searcher: str, words: Sequence[str], *, all_local: bool, limit: int
    ) -> list[DirectoryEntry]:
        """Up to `limit` visible users matching every word (lower-case), by user ID."""
        mine, theirs = room_members.alias("mine"), room_members.alias("theirs")
        shared = (
            select(theirs.c.user_id.label("user_id"))
            .select_from(mine.join(theirs, theirs.c.room_nid == mine.c.room_nid))
            .where(mine.c.user_id == searcher, mine.c.membership == "join", theirs.c.membership == "join")
        )
        public = (
            select(room_members.c.user_id.label("user_id"))
            .select_from(
                room_publicity.join(room_members, room_members.c.room_nid == room_publicity.c.room_nid)
            )
            .where(
                or_(room_publicity.c.public_join.is_(True), room_publicity.c.world_readable.is_(True)),
                room_members.c.membership == "join",
            )
        )
        parts: list[Any] = [shared, public]
        if all_local:
            parts.append(select(users.c.user_id.label("user_id")))
        visible = union(*parts).subquery("visible")
        matches: list[ColumnElement[bool]] = [
            or_(
                func.lower(visible.c.user_id).like(_like(w), escape="\\"),
                func.lower(profiles.c.displayname).like(_like(w), escape="\\"),
            )
            for w in words
        ]
        rows: list[Any] = list(await conn.execute(
            select(visible.c.user_id, profiles.c.displayname, profiles.c.avatar_url)
            .select_from(
                visible.outerjoin(profiles, profiles.c.user_id == visible.c.user_id).outerjoin(
                    users, users.c.user_id == visible.c.user_id
                )
            )
            .where(or_(users.c.deactivated.is_(None), users.c.deactivated.is_(False)), and_(*matches))
            .order_by(visible.c.user_id)
            .limit(limit)
        ))
        return [DirectoryEntry(r[0], r[1], r[2]) for r in rows]
