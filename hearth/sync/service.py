"""Building /sync responses.

A response covers the stream positions from the client's `since` token (none:
an initial sync) up to `upto`, the positions current when the request is read.
For each room the user is in:

- joined rooms that changed get `timeline` (the newest events, at most the
  filter's limit, `limited` when more were skipped, `prev_batch` to page back
  from), `state` (the full state at the timeline's start for an initial sync,
  a newly joined room or `full_state`; otherwise only what changed between
  `since` and the timeline's start, which is nothing unless the timeline was
  limited), `account_data`, `ephemeral` and `summary`;
- invites and knocks carry the stripped state a client needs to show them;
- rooms left since `since` (or, with `include_leave`, on an initial sync)
  carry the timeline up to the leave.

Finding changed rooms is one range scan of the stream index over the new
events, so an incremental sync with nothing new does no per-room work. A sync
with nothing to report waits on the notifier (subscribed before the database is
read, so nothing can slip between the read and the wait) until news or the
timeout.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from hearth.clock import Clock
from hearth.core.events import Event, StateKey
from hearth.errors import invalid_param
from hearth.notifier import Notifier
from hearth.rooms.persist import EventPersister
from hearth.rooms.serialize import EventSerializer
from hearth.rooms.visibility import HistoryVisibility
from hearth.storage.account_data import AccountDataStore
from hearth.storage.db import Database, DbConnection
from hearth.storage.events import EventsStore, StoredEvent
from hearth.storage.positions import PositionTracker
from hearth.storage.rooms import RoomsStore
from hearth.storage.state import StateStore
from hearth.storage.sync import Membership, SyncStore
from hearth.storage.timeline import EventMatch
from hearth.sync.streams import SyncContext, SyncStream
from hearth.sync.summary import RoomSummaries
from hearth.sync.token import SyncToken
from hearth.users.filters import Filter, RoomEventFilter
from hearth.users.sessions import Requester

# A user's membership list is kept between syncs (for a user in 200 rooms,
# rebuilding it was a third of an incremental sync's CPU; for any user it is a
# query on each of the two builds a woken long-poll costs), until
# `RoomsStore.membership_version` says it changed. This many users are kept.
MEMBERSHIPS_CACHE_USERS = 1_000
DEFAULT_TIMELINE_LIMIT = 10
MAX_TIMELINE_LIMIT = 100
# State a client needs to show an invite or a knock (stripped state).
STRIPPED_STATE_KEYS: tuple[StateKey, ...] = (
    ("m.room.create", ""),
    ("m.room.join_rules", ""),
    ("m.room.name", ""),
    ("m.room.avatar", ""),
    ("m.room.canonical_alias", ""),
    ("m.room.encryption", ""),
    ("m.room.topic", ""),
)
# Sees every response before it is returned and may add to it (e.g. unread
# notification counts for the joined rooms in it, in one query for all).
ResponseHook = Callable[[SyncContext, dict[str, Any]], Awaitable[None]]


def _match(flt: RoomEventFilter | None) -> EventMatch | None:
    if flt is None:
        return None
    match = EventMatch(
        types=flt.types, not_types=flt.not_types or (), senders=flt.senders, not_senders=flt.not_senders or ()
    )
    return None if match.is_everything else match


def _room_allowed(flt: Filter, room_id: str) -> bool:
    room = flt.room
    if room is None:
        return True
    if room.rooms is not None and room_id not in room.rooms:
        return False
    return room_id not in (room.not_rooms or ())


def _quiet_room(upto: SyncToken) -> dict[str, Any]:
    """A joined room entry with nothing but what a stream adds (e.g. typing)."""
    return {
        "timeline": {"events": [], "limited": False, "prev_batch": f"s{upto.events}"},
        "state": {"events": []},
        "account_data": {"events": []},
        "ephemeral": {"events": []},
    }


def stripped(event: Event) -> dict[str, Any]:
    return {
        "type": event.type,
        "state_key": event.state_key,
        "content": dict(event.content),
        "sender": event.sender,
    }


class _UserRooms:
    """A user's memberships, indexed for /sync; kept until their membership version changes.

    An incremental sync looks only at the rooms something happened in
    (`touched`): walking every membership was most of its CPU for a user in
    200 rooms.
    """

    __slots__ = ("_by_nid", "joined", "memberships", "newest_change", "version")

    def __init__(self, version: int, memberships: list[Membership]) -> None:
        self.version = version
        self.memberships = memberships
        # Room IDs of the joined rooms, in membership order (shared: never mutated).
        self.joined = [m.room.room_id for m in memberships if m.membership == "join"]
        self._by_nid = {m.room.room_nid: i for i, m in enumerate(memberships)}
        self.newest_change = max((m.stream_ordering for m in memberships), default=0)

    @property
    def room_nids(self) -> Iterable[int]:
        return self._by_nid.keys()

    def touched(
        self, since: int, changed: set[int], room_account_data: Mapping[str, Any]
    ) -> list[Membership]:
        """Memberships in rooms with new events or room account data, or changed after `since`.

        A membership change is normally an event in `changed` already; looking
        at the memberships themselves when one is newer than `since` also
        catches one whose event is not in the timeline (an invite received as
        an outlier). Only the rooms' nids are indexed (memory per cached user).
        """
        found = {i for nid in changed if (i := self._by_nid.get(nid)) is not None}
        if room_account_data:
            found.update(i for i, m in enumerate(self.memberships) if m.room.room_id in room_account_data)
        if self.newest_change > since:
            found.update(i for i, m in enumerate(self.memberships) if m.stream_ordering > since)
        return [self.memberships[i] for i in sorted(found)]


class SyncService:
    def __init__(
        self,
        *,
        db: Database,
        store: SyncStore,
        rooms: RoomsStore,
        events: EventsStore,
        state: StateStore,
        account_data: AccountDataStore,
        visibility: HistoryVisibility,
        serializer: EventSerializer,
        positions: PositionTracker,
        persister: EventPersister,
        notifier: Notifier,
        clock: Clock,
        streams: Sequence[SyncStream] = (),
    ) -> None:
        self._db = db
        self._store = store
        self._rooms = rooms
        self._memberships: OrderedDict[str, _UserRooms] = OrderedDict()
        self._events = events
        self._state = state
        self._account_data = account_data
        self._visibility = visibility
        self._serializer = serializer
        self._positions = positions
        self._notifier = notifier
        self._clock = clock
        self._streams = list(streams)
        self._response_hooks: list[ResponseHook] = []
        # room nid -> the newest stream position of an event persisted in it by
        # this process; positions up to the floor (those persisted before it
        # started) are not covered.
        self._room_newest: dict[int, int] = {}
        self._room_newest_floor = positions.current
        persister.add_persisted_listener(self._on_persisted)

    def add_stream(self, stream: SyncStream) -> None:
        self._streams.append(stream)

    def add_response_hook(self, hook: ResponseHook) -> None:
        self._response_hooks.append(hook)

    def current_token(self) -> SyncToken:
        """The positions every stream has reached (all kept in memory: no query)."""
        others = {s.token_key: s.current_position() for s in self._streams}
        return SyncToken(events=self._positions.current, account_data=self._account_data.current_position(),
                         **others)

    async def sync(
        self, requester: Requester, *, since: SyncToken | None, timeout_ms: int, full_state: bool, flt: Filter
    ) -> dict[str, Any]:
        deadline = time.monotonic() + max(0, timeout_ms) / 1000
        with self._notifier.subscribe(requester.user_id) as sub:
            while True:
                upto = self.current_token()
                # Typing positions live in memory: one this process never reached is
                # not an error (the typing stream sends the current state instead).
                if since is not None and since.advanced_past(replace(upto, typing=since.typing)):
                    raise invalid_param("The 'since' token is from the future")
                response, news, joined = await self._build(requester, since, upto, flt, full_state)
                remaining = deadline - time.monotonic()
                if news or since is None or full_state or remaining <= 0:
                    return response
                # Not kept while parked (memory per long-poll): a timeout builds
                # the empty answer again, with the then current positions.
                del response
                sub.watch_rooms(joined)
                if self.current_token().advanced_past(upto):
                    continue  # news arrived while we read; look again before sleeping
                del joined, upto  # (likewise; the next pass reads both afresh)
                await sub.wait(remaining)

    async def _build(
        self, requester: Requester, since: SyncToken | None, upto: SyncToken, flt: Filter, full_state: bool
    ) -> tuple[dict[str, Any], bool, list[str]]:
        user_id = requester.user_id
        include_leave = bool(flt.room and flt.room.include_leave)
        join: dict[str, Any] = {}
        invite: dict[str, Any] = {}
        knock: dict[str, Any] = {}
        leave: dict[str, Any] = {}
        newly_joined: list[int] = []
        async with self._db.read() as conn:
            user_rooms = await self._user_rooms(conn, user_id)
            joined = user_rooms.joined
            changed = (
                await self._changed_rooms(conn, user_rooms, since.events, upto.events)
                if since is not None and not full_state
                else None
            )
            room_account_data, global_account_data = await self._account_data_since(user_id, since, upto)
            summaries = RoomSummaries(self._store, self._state)
            if since is None or full_state:  # every joined room gets a summary
                await summaries.prefetch(conn, [
                    m.room.room_nid for m in user_rooms.memberships
                    if m.membership == "join" and _room_allowed(flt, m.room.room_id)
                ])
            if since is None or changed is None:
                walked = user_rooms.memberships
            else:
                walked = user_rooms.touched(since.events, changed, room_account_data)
            for m in walked:
                room_id = m.room.room_id
                membership_changed = since is not None and since.events < m.stream_ordering <= upto.events
                if m.membership == "join" and membership_changed:
                    newly_joined.append(m.room.room_nid)
                if not _room_allowed(flt, room_id):
                    continue
                if m.membership == "join":
                    if (
                        changed is not None
                        and m.room.room_nid not in changed
                        and not membership_changed
                        and room_id not in room_account_data
                    ):
                        continue
                    entry = await self._joined_room(
                        conn, requester, m, since, upto, flt, full_state, room_account_data.get(room_id, []),
                        summaries,
                    )
                    if entry is not None:
                        join[room_id] = entry
                elif m.membership in ("invite", "knock"):
                    if since is None or membership_changed:
                        section = await self._stripped_state(conn, m)
                        if m.membership == "invite":
                            invite[room_id] = {"invite_state": {"events": section}}
                        else:
                            knock[room_id] = {"knock_state": {"events": section}}
                elif m.membership in ("leave", "ban") and (
                    membership_changed or (since is None and include_leave)
                ):
                    leave[room_id] = await self._left_room(conn, requester, m, since, flt)
        room_filter = flt.room
        if room_filter is None or (room_filter.rooms is None and not room_filter.not_rooms):
            allowed = joined
        else:
            allowed = [r for r in joined if _room_allowed(flt, r)]
        ctx = SyncContext(requester, since, upto, flt, allowed, newly_joined)
        for stream in self._streams:
            await stream.collect(ctx)
        for room_id, ephemeral in ctx.ephemeral.items():
            entry = join.get(room_id)
            if entry is None:
                entry = join[room_id] = _quiet_room(upto)
            entry["ephemeral"]["events"].extend(ephemeral)
        rooms: dict[str, Any] = {}
        for name, rooms_of_kind in (("join", join), ("invite", invite), ("knock", knock), ("leave", leave)):
            if rooms_of_kind:
                rooms[name] = rooms_of_kind
        response: dict[str, Any] = {
            "next_batch": str(replace(upto, **ctx.stopped_at)),
            "rooms": rooms,
            "account_data": {"events": global_account_data},
            "presence": {"events": []},
            "device_lists": {"changed": [], "left": []},
            "device_one_time_keys_count": {},
            **ctx.top_level,
        }
        news = bool(rooms) or bool(global_account_data) or ctx.news
        for hook in self._response_hooks:
            await hook(ctx, response)
        return response, news, joined

    def _on_persisted(self, stored: StoredEvent, _state_changed: bool) -> None:
        if stored.stream_ordering is not None:
            newest = self._room_newest.get(stored.room_nid, 0)
            self._room_newest[stored.room_nid] = max(newest, stored.stream_ordering)

    async def _changed_rooms(self, conn: DbConnection, user_rooms: _UserRooms, since: int, upto: int
                             ) -> set[int]:
        """The user's rooms (nids) that may have events in (since, upto].

        From memory when `since` is no older than this process (every event
        persisted since is in `_room_newest`); else one range scan of the
        stream index. Rooms that had events after `upto` are included too:
        the timeline query is bounded by `upto` anyway.
        """
        if since < self._room_newest_floor:
            return await self._store.rooms_with_events(conn, since, upto)
        newest = self._room_newest
        return {nid for nid in user_rooms.room_nids if newest.get(nid, 0) > since}

    async def _user_rooms(self, conn: DbConnection, user_id: str) -> _UserRooms:
        version = self._rooms.membership_version(user_id)
        cached = self._memberships.get(user_id)
        if cached is not None and cached.version == version:
            self._memberships.move_to_end(user_id)
            return cached
        user_rooms = _UserRooms(version, await self._store.memberships(conn, user_id))
        self._memberships[user_id] = user_rooms
        if len(self._memberships) > MEMBERSHIPS_CACHE_USERS:
            self._memberships.popitem(last=False)
        return user_rooms

    async def _account_data_since(
        self, user_id: str, since: SyncToken | None, upto: SyncToken
    ) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
        if since is not None and since.account_data >= upto.account_data:
            return {}, []  # nothing written since: no query
        entries = await self._account_data.changed_since(
            user_id, since.account_data if since else 0, upto.account_data
        )
        per_room: dict[str, list[dict[str, Any]]] = {}
        global_: list[dict[str, Any]] = []
        for entry in entries:
            item = {"type": entry.type, "content": entry.content}
            if entry.room_id:
                per_room.setdefault(entry.room_id, []).append(item)
            else:
                global_.append(item)
        return per_room, global_

    def _timeline_limit(self, flt: Filter) -> int:
        timeline = flt.room.timeline if flt.room else None
        limit = timeline.limit if timeline and timeline.limit is not None else DEFAULT_TIMELINE_LIMIT
        return max(1, min(limit, MAX_TIMELINE_LIMIT))

    async def _timeline(
        self, conn: DbConnection, m: Membership, since: int, upto: int, flt: Filter
    ) -> tuple[list[StoredEvent], bool]:
        """The newest visible events of the room in (since, upto], oldest first."""
        limit = self._timeline_limit(flt)
        nids = await self._store.recent_event_nids(conn, m.room.room_nid, since, upto, limit + 1)
        limited = len(nids) > limit
        nids = nids[:limit]
        stored = await self._events.by_nids(conn, nids)
        ordered = [stored[n] for n in reversed(nids) if n in stored]
        match = _match(flt.room.timeline if flt.room else None)
        if match is not None:
            ordered = [s for s in ordered if match.matches(s.event)]
        return ordered, limited

    async def _joined_room(
        self,
        conn: DbConnection,
        requester: Requester,
        m: Membership,
        since: SyncToken | None,
        upto: SyncToken,
        flt: Filter,
        full_state: bool,
        account_data: list[dict[str, Any]],
        summaries: RoomSummaries,
    ) -> dict[str, Any] | None:
        room = m.room
        newly_joined = since is not None and since.events < m.stream_ordering <= upto.events
        lower = since.events if since is not None else 0
        events, limited = await self._timeline(conn, m, lower, upto.events, flt)
        viewer = await self._visibility.viewer(conn, room, requester.user_id)
        visible = await viewer.filter(conn, events)

        start_nid = (
            events[0].state_before_nid
            if events
            else await self._store.state_at_stream(conn, room.room_nid, upto.events)
        )
        state_map: dict[int, int] = {}
        if since is None or newly_joined or full_state:
            if start_nid is not None:
                state_map = await self._state.load(conn, start_nid)
        elif limited and start_nid is not None:
            since_nid = await self._store.state_at_stream(conn, room.room_nid, since.events)
            start = await self._state.load(conn, start_nid)
            before = await self._state.load(conn, since_nid) if since_nid is not None else {}
            state_map = {k: v for k, v in start.items() if before.get(k) != v}
        state_events = await self._state_events(conn, state_map, visible, requester.user_id, flt)

        if since is not None and not visible and not state_events and not account_data and not newly_joined:
            return None
        timeline = await self._serializer.serialize(
            conn,
            visible,
            user_id=requester.user_id,
            device_id=requester.device_id,
            viewer=viewer,
            prev_content=True,
            include_room_id=False,
        )
        state_json = await self._serializer.serialize(
            conn, state_events, user_id=requester.user_id, include_room_id=False
        )
        prev_batch = f"s{events[0].stream_ordering - 1}" if events else f"s{upto.events}"  # type: ignore[operator]
        entry: dict[str, Any] = {
            "timeline": {"events": timeline, "limited": limited, "prev_batch": prev_batch},
            "state": {"events": state_json},
            "account_data": {"events": account_data},
            "ephemeral": {"events": []},
        }
        membership_news = any(s.event.type == "m.room.member" for s in [*visible, *state_events])
        if since is None or newly_joined or membership_news:
            entry["summary"] = await summaries.summary(conn, m, requester.user_id)
        return entry

    async def _state_events(
        self,
        conn: DbConnection,
        state_map: dict[int, int],
        timeline: Sequence[StoredEvent],
        user_id: str,
        flt: Filter,
    ) -> list[StoredEvent]:
        """The state section: `state_map` minus the timeline, lazy-loading members if asked."""
        if not state_map:
            return []
        in_timeline = {s.event_nid for s in timeline}
        keys = await self._state.keys_for_nids(conn, state_map)
        state_filter = flt.room.state if flt.room else None
        lazy = bool(state_filter and state_filter.lazy_load_members)
        wanted_members = {s.event.sender for s in timeline} | {user_id}
        nids = [
            event_nid
            for key_nid, event_nid in state_map.items()
            if event_nid not in in_timeline
            and not (lazy and keys[key_nid][0] == "m.room.member" and keys[key_nid][1] not in wanted_members)
        ]
        found = await self._events.by_nids(conn, nids)
        out = sorted(found.values(), key=lambda s: s.stream_ordering or 0)
        match = _match(state_filter)
        return [s for s in out if match is None or match.matches(s.event)]

    async def _stripped_state(self, conn: DbConnection, m: Membership) -> list[dict[str, Any]]:
        key_nids = await self._state.key_nids(conn, STRIPPED_STATE_KEYS, create=False)
        current = await self._state.current_event_nids(conn, m.room.room_nid, key_nids.values())
        found = await self._events.events_by_nids(conn, [*current.values(), m.event_nid])
        return [stripped(event) for event in found.values()]

    async def _left_room(
        self, conn: DbConnection, requester: Requester, m: Membership, since: SyncToken | None, flt: Filter
    ) -> dict[str, Any]:
        """The timeline up to (and including) the user's leave, ban or kick."""
        lower = since.events if since is not None else 0
        events, limited = await self._timeline(conn, m, lower, m.stream_ordering, flt)
        viewer = await self._visibility.viewer(conn, m.room, requester.user_id)
        visible = await viewer.filter(conn, events)
        timeline = await self._serializer.serialize(
            conn,
            visible,
            user_id=requester.user_id,
            device_id=requester.device_id,
            viewer=viewer,
            prev_content=True,
            include_room_id=False,
        )
        prev_batch = f"s{events[0].stream_ordering - 1}" if events else f"s{m.stream_ordering}"  # type: ignore[operator]
        return {
            "timeline": {"events": timeline, "limited": limited, "prev_batch": prev_batch},
            "state": {"events": []},
            "account_data": {"events": []},
        }
