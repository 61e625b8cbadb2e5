"""History visibility: which events of a room a user may see, and which state.

The rules (client-server spec, "Room History Visibility", server behaviour)
are judged with the room state *at each event*: the event's state-before
snapshot gives the `m.room.history_visibility` in force and the user's
membership then. An event is visible when

1. the visibility was `world_readable`, or
2. the user's membership was `join`, or
3. the visibility was `shared` and the user joined at some point after the
   event (they are joined now, or one of their join events has a later stream
   position), or
4. the visibility was `invited` and the user's membership was `invite`.

An unknown or missing visibility counts as `shared`. A history visibility
event is visible if the state before *or* after it allows it, and so is the
user's own membership event (so a user always sees their own join and leave).

Cost: a page of events usually shares one or two snapshots. For each distinct
snapshot the two keys are read with one batched query over the snapshot delta
chains (`TimelineStore.entries_at`), never a full state load. Snapshots and
events never change once committed, so (snapshot, key) -> event and
event -> value are memoised process-wide in small LRU maps; a `Viewer` also
memoises per request. The few queries that depend on the user (current
membership, their join history) run once per request, and only when needed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from hearth.core.events import StateKey
from hearth.errors import forbidden
from hearth.storage.db import DbConnection
from hearth.storage.events import EventsStore, StoredEvent
from hearth.storage.rooms import RoomInfo
from hearth.storage.state import StateStore
from hearth.storage.timeline import Pos, TimelineStore

HISTORY_VISIBILITY_KEY: StateKey = ("m.room.history_visibility", "")
WORLD_READABLE, SHARED, INVITED, JOINED = "world_readable", "shared", "invited", "joined"
_KNOWN = frozenset({WORLD_READABLE, SHARED, INVITED, JOINED})
_DEPARTED = frozenset({"leave", "ban"})

K = TypeVar("K")
V = TypeVar("V")


class _LRU(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._data[key] = value
        if len(self._data) > self._size:
            self._data.popitem(last=False)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rules need from one snapshot: the visibility and the user's membership."""

    visibility: str
    membership: str | None


_EMPTY_STATE = Facts(SHARED, None)


def decide(facts: Facts) -> bool | None:
    """Rules 1, 2 and 4; None when only rule 3 (shared, joined later) could allow."""
    if facts.visibility == WORLD_READABLE or facts.membership == "join":
        return True
    if facts.visibility == INVITED and facts.membership == "invite":
        return True
    if facts.visibility == SHARED:
        return None
    return False


def _combine(a: bool | None, b: bool | None) -> bool | None:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


class HistoryVisibility:
    """Builds per-request `Viewer`s; holds the process-wide memo of immutable facts."""

    _CACHE_SIZE = 100_000

    def __init__(self, *, events: EventsStore, state: StateStore, timeline: TimelineStore) -> None:
        self._events = events
        self._state = state
        self._timeline = timeline
        self._entries: _LRU[tuple[int, int], int] = _LRU(self._CACHE_SIZE)  # 0: key absent
        self._values: _LRU[int, str] = _LRU(self._CACHE_SIZE)  # event nid -> visibility/membership

    async def viewer(self, conn: DbConnection, room: RoomInfo, user_id: str) -> Viewer:
        """A viewer for `user_id` in `room`, with the user's current membership loaded."""
        current = await self._timeline.membership(conn, room.room_nid, user_id)
        member_key: StateKey = ("m.room.member", user_id)
        keys = await self._state.key_nids(conn, [HISTORY_VISIBILITY_KEY, member_key], create=False)
        return Viewer(
            self,
            room,
            user_id,
            membership=current[0] if current else None,
            membership_nid=current[1] if current else None,
            hv_key=keys.get(HISTORY_VISIBILITY_KEY),
            member_key=keys.get(member_key),
        )

    async def current_visibility(self, conn: DbConnection, room: RoomInfo) -> str:
        """The room's history visibility now (from current state)."""
        key = (await self._state.key_nids(conn, [HISTORY_VISIBILITY_KEY], create=False)).get(
            HISTORY_VISIBILITY_KEY
        )
        if key is None:
            return SHARED
        nids = await self._state.current_event_nids(conn, room.room_nid, [key])
        if key not in nids:
            return SHARED
        values = await self._values_of(conn, [nids[key]], "history_visibility")
        return _visibility(values.get(nids[key]))

    async def facts(
        self, conn: DbConnection, snapshot_nids: Iterable[int], hv_key: int | None, member_key: int | None
    ) -> dict[int, Facts]:
        """The Facts of each snapshot, from the memo or one batched query."""
        keys = [k for k in (hv_key, member_key) if k is not None]
        snaps = set(snapshot_nids)
        entries: dict[int, dict[int, int]] = {s: {} for s in snaps}
        missing: set[int] = set()
        for snap in snaps:
            for key in keys:
                hit = self._entries.get((snap, key))
                if hit is None:
                    missing.add(snap)
                elif hit:
                    entries[snap][key] = hit
        if missing:
            loaded = await self._timeline.entries_at(conn, missing, keys)
            for snap in missing:
                found = loaded.get(snap, {})
                for key in keys:
                    self._entries.put((snap, key), found.get(key, 0))
                entries[snap] = dict(found)
        hv_nids = {e[hv_key] for e in entries.values() if hv_key in e} if hv_key is not None else set()
        member_nids = {e[member_key] for e in entries.values() if member_key in e} if member_key else set()
        hv_values = await self._values_of(conn, hv_nids, "history_visibility")
        member_values = await self._values_of(conn, member_nids, "membership")
        out: dict[int, Facts] = {}
        for snap, found in entries.items():
            hv_nid = found.get(hv_key) if hv_key is not None else None
            member_nid = found.get(member_key) if member_key is not None else None
            out[snap] = Facts(
                _visibility(hv_values.get(hv_nid) if hv_nid else None),
                member_values.get(member_nid) if member_nid else None,
            )
        return out

    async def _values_of(self, conn: DbConnection, nids: Iterable[int], field: str) -> dict[int, str]:
        """The string `content[field]` of each event ("" when absent or not a string)."""
        out: dict[int, str] = {}
        missing = []
        for nid in nids:
            hit = self._values.get(nid)
            if hit is None:
                missing.append(nid)
            else:
                out[nid] = hit
        if missing:
            for nid, stored in (await self._events.by_nids(conn, missing)).items():
                value = stored.event.content.get(field)
                value = value if isinstance(value, str) else ""
                self._values.put(nid, value)
                out[nid] = value
        return out

    async def member_events(self, conn: DbConnection, room: RoomInfo, user_id: str) -> list[StoredEvent]:
        """The user's membership events in the room, newest first."""
        nids = await self._timeline.member_event_nids(conn, room.room_nid, user_id)
        found = await self._events.by_nids(conn, nids)
        return [found[n] for n in nids if n in found]

    async def event(self, conn: DbConnection, event_nid: int) -> StoredEvent | None:
        return (await self._events.by_nids(conn, [event_nid])).get(event_nid)


def _visibility(value: str | None) -> str:
    return value if value is not None and value in _KNOWN else SHARED


_NOT_LOADED = object()


class Viewer:
    """One user's view of one room during one request.

    `filter` keeps the events the user may see; afterwards `membership_at`
    tells the user's membership at each of them (for `unsigned.membership`).
    `timeline_bound` and `state_snapshot` decide which part of the room's
    timeline and which state the user may read at all.
    """

    def __init__(
        self,
        checker: HistoryVisibility,
        room: RoomInfo,
        user_id: str,
        *,
        membership: str | None,
        membership_nid: int | None,
        hv_key: int | None,
        member_key: int | None,
    ) -> None:
        self._checker = checker
        self.room = room
        self.user_id = user_id
        self.membership = membership  # current membership, None if never any
        self.membership_nid = membership_nid
        self._hv_key = hv_key
        self._member_key = member_key
        self._facts: dict[int, Facts] = {}
        self._last_join: object = _NOT_LOADED

    # --- per-event visibility ------------------------------------------------

    def _special(self, stored: StoredEvent) -> bool:
        event = stored.event
        return event.type == HISTORY_VISIBILITY_KEY[0] or (
            event.type == "m.room.member" and event.state_key == self.user_id
        )

    def _facts_of(self, snapshot_nid: int | None) -> Facts:
        return self._facts[snapshot_nid] if snapshot_nid is not None else _EMPTY_STATE

    async def filter(self, conn: DbConnection, events: Sequence[StoredEvent]) -> list[StoredEvent]:
        """The events the user may see, in the given order."""
        candidates = [e for e in events if e.stream_ordering is not None and e.rejected_reason is None
                      and (e.state_before_nid is not None or e.state_after_nid is not None)]
        wanted: set[int] = set()
        for stored in candidates:
            if stored.state_before_nid is not None:
                wanted.add(stored.state_before_nid)
            if stored.state_after_nid is not None and self._special(stored):
                wanted.add(stored.state_after_nid)
        wanted -= self._facts.keys()
        if wanted:
            self._facts.update(await self._checker.facts(conn, wanted, self._hv_key, self._member_key))
        verdicts: list[bool | None] = []
        for stored in candidates:
            verdict = decide(self._facts_of(stored.state_before_nid))
            if self._special(stored):
                verdict = _combine(verdict, decide(self._facts_of(stored.state_after_nid)))
            verdicts.append(verdict)
        last_join = await self._last_join_stream(conn) if None in verdicts else None
        return [
            stored
            for stored, verdict in zip(candidates, verdicts, strict=True)
            if verdict is True
            or (verdict is None and last_join is not None and last_join > stored.stream_ordering)  # type: ignore[operator]
        ]

    async def allows(self, conn: DbConnection, event: StoredEvent) -> bool:
        return bool(await self.filter(conn, [event]))

    def membership_at(self, stored: StoredEvent) -> str | None:
        """The user's membership just after `stored` ("leave" if none), once `filter` saw it."""
        event = stored.event
        if event.type == "m.room.member" and event.state_key == self.user_id:
            return event.membership or "leave"
        if stored.state_before_nid is None:
            return "leave" if stored.state_after_nid is not None else None
        facts = self._facts.get(stored.state_before_nid)
        return (facts.membership or "leave") if facts is not None else None

    async def _last_join_stream(self, conn: DbConnection) -> int | None:
        """The stream position of the user's last join (a huge number while joined)."""
        if self._last_join is _NOT_LOADED:
            if self.membership == "join":
                self._last_join = 2**63
            else:
                history = await self._checker.member_events(conn, self.room, self.user_id)
                self._last_join = next(
                    (e.stream_ordering for e in history if e.event.membership == "join"), None
                )
        return self._last_join  # type: ignore[return-value]

    async def ever_joined(self, conn: DbConnection) -> bool:
        return await self._last_join_stream(conn) is not None

    # --- what part of the room may be read at all -----------------------------

    async def timeline_bound(self, conn: DbConnection) -> Pos | None:
        """The last position the user may read up to (None: no bound), or M_FORBIDDEN.

        Anyone with a membership may page through the timeline (the per-event
        rules decide what they see); a departed user never past their leave.
        Someone who never had a membership may read only world-readable rooms.
        """
        if self.membership is None:
            if await self._checker.current_visibility(conn, self.room) != WORLD_READABLE:
                raise forbidden("You are not a member of this room")
            return None
        if self.membership in _DEPARTED and self.membership_nid is not None:
            left = await self._checker.event(conn, self.membership_nid)
            if left is not None and left.stream_ordering is not None:
                return (left.event.depth, left.stream_ordering)
        return None

    async def state_snapshot(self, conn: DbConnection) -> int | None:
        """Which room state the user may read: None for the current state, else a snapshot.

        Joined users, and anyone in a world-readable room, read the current
        state; a user who left or was banned after having joined reads the state
        as of that event; everyone else gets M_FORBIDDEN.
        """
        if self.membership == "join":
            return None
        if await self._checker.current_visibility(conn, self.room) == WORLD_READABLE:
            return None
        if self.membership in _DEPARTED and self.membership_nid is not None and await self.ever_joined(conn):
            stored = await self._checker.event(conn, self.membership_nid)
            if stored is not None and stored.state_after_nid is not None:
                return stored.state_after_nid
        raise forbidden("You are not a member of this room")
