"""The presence stream: top-level `presence.events` (m.presence) for /sync.

Who: the syncing user and everyone sharing a joined room with them. An
incremental sync gets the users whose presence was published since its
token, plus, for rooms the user joined since then, the members who are not
offline (new room-mates have not been seen before); an initial sync everyone
who is not offline. Content is computed at the moment of the sync (idle and
offline by time, `last_active_ago`), see `hearth.users.presence`. The
`presence` filter's types, senders and limit apply.
"""

from __future__ import annotations

from typing import Any

from hearth.storage.db import Database
from hearth.storage.presence import OFFLINE, PresenceRow, PresenceStore
from hearth.sync.streams import SyncContext
from hearth.sync.streams.filtering import sender_wanted, type_wanted
from hearth.users.presence import PresenceService

# Users in an initial sync (the most recently changed) and from newly joined rooms.
INITIAL_LIMIT = 1000
# Users in one incremental sync (the most recently changed, for a very old token).
MAX_CHANGED = 5000


class PresenceStream:
    token_key = "presence"

    def __init__(self, *, db: Database, store: PresenceStore, presence: PresenceService) -> None:
        self._db = db
        self._store = store
        self._presence = presence

    def current_position(self) -> int:
        return self._presence.current_position()

    async def collect(self, ctx: SyncContext) -> None:
        part = ctx.flt.presence
        if not self._presence.enabled or not type_wanted(part, "m.presence"):
            return
        user_id = ctx.requester.user_id
        upto = ctx.upto.presence
        present: list[PresenceRow] = []  # shown unless offline
        changed: list[PresenceRow] = []  # shown whatever they are
        if ctx.since is not None and ctx.since.presence >= upto and not ctx.newly_joined_room_nids:
            return  # nothing changed and no new room-mates: no transaction at all
        async with self._db.read() as conn:
            if ctx.since is None:
                present = await self._store.current_for(conn, user_id, upto, INITIAL_LIMIT)
            else:
                since = ctx.since.presence
                if since < upto:
                    changed = await self._store.changed_for(conn, user_id, since, upto, MAX_CHANGED)
                if ctx.newly_joined_room_nids:
                    present = await self._store.members_present(
                        conn, ctx.newly_joined_room_nids, upto, INITIAL_LIMIT
                    )
        events: dict[str, dict[str, Any]] = {}
        for row, always in [*((r, False) for r in present), *((r, True) for r in changed)]:
            if not sender_wanted(part, row.user_id):
                continue
            content = self._presence.content(row)
            if not always and content["presence"] == OFFLINE:
                continue
            events.pop(row.user_id, None)  # keep each user once, in the latest place
            events[row.user_id] = {"type": "m.presence", "sender": row.user_id, "content": content}
        shown = list(events.values())
        if part is not None and part.limit is not None:
            shown = shown[-part.limit:]
        if shown:
            ctx.top_level["presence"] = {"events": shown}
            ctx.news = True
