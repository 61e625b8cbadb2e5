"""Room summaries (`m.heroes`, member counts) for the rooms of one /sync response.

An initial sync summarises every joined room. Asking per room cost three
queries a room (counts, the naming keys' ids, whether a name is set), which
made the summary the largest part of an initial sync of a user in a few
hundred rooms. `RoomSummaries` lives for one response: `prefetch` answers the
counts and "is it named?" for all rooms in two queries, the naming keys' ids
are looked up once, and a room that was not prefetched (an incremental sync
with a membership change) is still answered on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hearth.core.events import StateKey
from hearth.storage.db import DbConnection
from hearth.storage.state import StateStore
from hearth.storage.sync import Membership, SyncStore

# A room with either of these in its current state has a name; others get heroes.
NAMING_KEYS: tuple[StateKey, ...] = (("m.room.name", ""), ("m.room.canonical_alias", ""))


class RoomSummaries:
    def __init__(self, store: SyncStore, state: StateStore) -> None:
        self._store = store
        self._state = state
        self._naming_key_nids: list[int] | None = None
        self._counts: dict[int, dict[str, int]] = {}
        self._named: dict[int, bool] = {}

    async def _naming_keys(self, conn: DbConnection) -> list[int]:
        if self._naming_key_nids is None:
            found = await self._state.key_nids(conn, NAMING_KEYS, create=False)
            self._naming_key_nids = list(found.values())
        return self._naming_key_nids

    async def prefetch(self, conn: DbConnection, room_nids: Iterable[int]) -> None:
        """Counts and naming for many rooms at once (an initial or full-state sync)."""
        wanted = [n for n in room_nids if n not in self._counts]
        if not wanted:
            return
        self._counts.update(await self._store.member_counts(conn, wanted))
        named = await self._store.rooms_with_state(conn, wanted, await self._naming_keys(conn))
        self._named.update({n: n in named for n in wanted})

    async def summary(self, conn: DbConnection, m: Membership, user_id: str) -> dict[str, Any]:
        room_nid = m.room.room_nid
        if room_nid not in self._counts:
            await self.prefetch(conn, [room_nid])
        counts = self._counts[room_nid]
        out: dict[str, Any] = {
            "m.joined_member_count": counts.get("join", 0),
            "m.invited_member_count": counts.get("invite", 0),
        }
        if not self._named[room_nid]:
            out["m.heroes"] = await self._store.heroes(conn, room_nid, user_id)
        return out
