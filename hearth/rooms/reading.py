"""Reading rooms: state, members, single events, /messages, /context, timestamps.

Every read goes through a `Viewer` (history visibility, see visibility.py)
and every event leaves through the `EventSerializer`, so the rules of who
sees what, and of how redacted events look, live in one place each.

Pagination tokens
-----------------
Tokens are positions *between* events. Events are ordered by
(depth, stream_ordering), both integers, so a token names the boundary just
after one position:

- ``t{depth}_{stream}`` (topological): the boundary after the event at
  (depth, stream). Paginating backwards from it returns that event first;
  forwards, the event after it. ``/messages`` and ``/context`` hand these out.
  The boundary just before an event at (d, s) is ``t{d}_{s-1}``, since no
  event sits between them. ``t0_0`` is before every event (depths start at 1).
- ``s{stream}`` (stream): the boundary after everything the room had at
  stream position N, as /sync hands out in ``prev_batch``. Anything after an
  underscore (``s12_4_9``, a whole sync token) is ignored here. It is turned
  into the position of the room's last event at or before N.

Numbers may be negative (backfilled events have negative stream positions).
Anything else is 400 M_INVALID_PARAM.

Scanning
--------
A page is read with keyset queries (`TimelineStore.page`), `limit + 1` rows
at a time so the end of the timeline is known without another query; events
the user may not see, or that the filter drops after loading (contains_url,
ignored users), are skipped and more rows are read, up to a budget, so a page
is never a long loop. The `end` token then points past the last row looked at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hearth.core.events import StateKey
from hearth.errors import forbidden, invalid_param, not_found
from hearth.rooms.serialize import EventSerializer
from hearth.rooms.visibility import HistoryVisibility, Viewer
from hearth.storage.account_data import AccountDataStore
from hearth.storage.db import Database, DbConnection
from hearth.storage.events import EventsStore, StoredEvent
from hearth.storage.rooms import RoomInfo, RoomsStore
from hearth.storage.state import StateStore
from hearth.storage.timeline import EventMatch, Pos, TimelineStore
from hearth.users.filters import RoomEventFilter
from hearth.users.sessions import Requester

MEMBERSHIPS = frozenset({"join", "invite", "knock", "leave", "ban"})
BEFORE_ALL: Pos = (0, 0)
MAX_LIMIT = 1000
# Rows read beyond `limit` while skipping invisible or filtered-out events.
_SCAN_BUDGET = 1000

_TOKEN = re.compile(r"t(-?\d{1,19})_(-?\d{1,19})|s(-?\d{1,19})(?:_[0-9_]*)?")


@dataclass(frozen=True, slots=True)
class Token:
    """A parsed pagination token: a topological position, or a stream position."""

    pos: Pos | None = None
    stream: int | None = None

    @classmethod
    def parse(cls, raw: str, name: str) -> Token:
        m = _TOKEN.fullmatch(raw)
        if m is None:
            raise invalid_param(f"Invalid pagination token in {name}")
        if m.group(3) is not None:
            return cls(stream=int(m.group(3)))
        return cls(pos=(int(m.group(1)), int(m.group(2))))


def topo_token(pos: Pos) -> str:
    return f"t{pos[0]}_{pos[1]}"


def before(pos: Pos) -> Pos:
    """The boundary just before the event at `pos`."""
    return (pos[0], pos[1] - 1)


@dataclass
class Scan:
    """What one scan found: events in scan order, where it stopped, and whether more may follow."""

    events: list[StoredEvent]
    boundary: Pos | None  # past the last event taken or row looked at; None if nothing was looked at
    more: bool
    first: Pos | None = None  # position of the first row looked at


@dataclass
class PostFilter:
    """Checks that need the loaded event: contains_url and ignored senders."""

    contains_url: bool | None = None
    ignored: frozenset[str] = field(default_factory=frozenset)

    def __call__(self, stored: StoredEvent) -> bool:
        event = stored.event
        if self.ignored and not event.is_state() and event.sender in self.ignored:
            return False
        if self.contains_url is not None:
            has_url = isinstance(event.content.get("url"), str)
            return has_url == self.contains_url
        return True


def _earliest(a: Pos | None, b: Pos | None) -> Pos | None:
    """The lower of two upper bounds (None: unbounded)."""
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)


def event_match(flt: RoomEventFilter | None) -> EventMatch | None:
    if flt is None:
        return None
    match = EventMatch(
        types=flt.types, not_types=flt.not_types or (), senders=flt.senders, not_senders=flt.not_senders or ()
    )
    return None if match.is_everything else match


def room_excluded(flt: RoomEventFilter | None, room_id: str) -> bool:
    if flt is None:
        return False
    return (flt.rooms is not None and room_id not in flt.rooms) or room_id in (flt.not_rooms or ())


class RoomReader:
    def __init__(
        self,
        *,
        db: Database,
        rooms: RoomsStore,
        events: EventsStore,
        state: StateStore,
        timeline: TimelineStore,
        visibility: HistoryVisibility,
        serializer: EventSerializer,
        account_data: AccountDataStore,
    ) -> None:
        self._db = db
        self._rooms = rooms
        self._events = events
        self._state = state
        self._timeline = timeline
        self._visibility = visibility
        self._serializer = serializer
        self._account_data = account_data

    async def _room(self, room_id: str, *, event_missing: bool = False) -> RoomInfo:
        """The room; unknown rooms look like rooms the user is not in (or, for an event, 404)."""
        room = await self._rooms.get(room_id)
        if room is None:
            if event_missing:
                raise not_found("Event not found")
            raise forbidden(f"You are not in room {room_id}")
        return room

    async def _ignored(self, user_id: str) -> frozenset[str]:
        content = await self._account_data.get(user_id, "", "m.ignored_user_list")
        ignored = content.get("ignored_users") if content else None
        return frozenset(ignored) if isinstance(ignored, dict) else frozenset()

    # --- state ---------------------------------------------------------------

    async def _state_nids(self, conn: DbConnection, room: RoomInfo, viewer: Viewer) -> dict[int, int]:
        snapshot = await viewer.state_snapshot(conn)
        if snapshot is None:
            return await self._state.current_event_nids(conn, room.room_nid)
        return await self._state.load(conn, snapshot)

    async def room_state(self, requester: Requester, room_id: str) -> list[dict[str, Any]]:
        """GET /state: current state, or the state when the user left."""
        room = await self._room(room_id)
        async with self._db.read() as conn:
            viewer = await self._visibility.viewer(conn, room, requester.user_id)
            nids = await self._state_nids(conn, room, viewer)
            found = await self._events.by_nids(conn, nids.values())
            ordered = sorted(found.values(), key=lambda s: s.event.state_tuple)
            return await self._serializer.serialize(
                conn, ordered, user_id=requester.user_id, device_id=requester.device_id
            )

    async def state_event(
        self, requester: Requester, room_id: str, event_type: str, state_key: str
    ) -> dict[str, Any]:
        """GET /state/{type}/{key}: the client-format event (callers pick its content)."""
        room = await self._room(room_id)
        key: StateKey = (event_type, state_key)
        async with self._db.read() as conn:
            viewer = await self._visibility.viewer(conn, room, requester.user_id)
            snapshot = await viewer.state_snapshot(conn)
            key_nid = (await self._state.key_nids(conn, [key], create=False)).get(key)
            event_nid: int | None = None
            if key_nid is not None:
                if snapshot is None:
                    current = await self._state.current_event_nids(conn, room.room_nid, [key_nid])
                    event_nid = current.get(key_nid)
                else:
                    entries = await self._timeline.entries_at(conn, [snapshot], [key_nid])
                    event_nid = entries.get(snapshot, {}).get(key_nid)
            stored = (await self._events.by_nids(conn, [event_nid])).get(event_nid) if event_nid else None
            if stored is None:
                raise not_found(f"Room {room_id} has no state {event_type} with key {state_key!r}")
            served = await self._serializer.serialize(
                conn, [stored], user_id=requester.user_id, device_id=requester.device_id
            )
            return served[0]

    async def members(
        self,
        requester: Requester,
        room_id: str,
        *,
        at: str | None = None,
        membership: str | None = None,
        not_membership: str | None = None,
    ) -> list[dict[str, Any]]:
        """GET /members: member events of the current state (or at `at`, or when the user left).

        `membership` and `not_membership` together are an OR, as the spec says.
        """
        for value, name in ((membership, "membership"), (not_membership, "not_membership")):
            if value is not None and value not in MEMBERSHIPS:
                raise invalid_param(f"Unknown {name} {value!r}")
        token = Token.parse(at, "at") if at is not None else None

        def wanted(m: str | None) -> bool:
            if membership is None and not_membership is None:
                return True
            return (membership is not None and m == membership) or (
                not_membership is not None and m != not_membership
            )

        room = await self._room(room_id)
        async with self._db.read() as conn:
            viewer = await self._visibility.viewer(conn, room, requester.user_id)
            snapshot = await viewer.state_snapshot(conn)
            if token is not None:
                pos = await self._resolve(conn, room, token)
                bound = await viewer.timeline_bound(conn)
                if bound is not None and pos > bound:
                    pos = bound
                snapshot = await self._timeline.state_after_at(conn, room.room_nid, pos)
                if snapshot is None:
                    return []
            if snapshot is None:
                rows = await self._timeline.members(conn, room.room_nid)
                nids = [nid for _, m, nid in rows if wanted(m)]
                found = await self._events.by_nids(conn, nids)
                chosen = [found[n] for n in nids if n in found]
            else:
                full = await self._state.load(conn, snapshot)
                keys = await self._state.keys_for_nids(conn, full)
                member_nids = [e for k, e in full.items() if keys[k][0] == "m.room.member"]
                found = await self._events.by_nids(conn, member_nids)
                chosen = sorted(
                    (s for s in found.values() if wanted(s.event.membership)),
                    key=lambda s: s.event.state_key or "",
                )
            return await self._serializer.serialize(
                conn, chosen, user_id=requester.user_id, device_id=requester.device_id
            )

    async def joined_members(self, requester: Requester, room_id: str) -> dict[str, dict[str, str]]:
        """GET /joined_members: {user_id: {display_name, avatar_url}} from the member events."""
        room = await self._room(room_id)
        async with self._db.read() as conn:
            mine = await self._timeline.membership(conn, room.room_nid, requester.user_id)
            if mine is None or mine[0] != "join":
                raise forbidden(f"You are not in room {room_id}")
            rows = await self._timeline.members(conn, room.room_nid, ["join"])
            found = await self._events.by_nids(conn, [nid for _, _, nid in rows])
        out: dict[str, dict[str, str]] = {}
        for user_id, _, nid in rows:
            stored = found.get(nid)
            content = stored.event.content if stored is not None and not stored.redacted_by else {}
            profile: dict[str, str] = {}
            for src, dst in (("displayname", "display_name"), ("avatar_url", "avatar_url")):
                value = content.get(src)
                if isinstance(value, str):
                    profile[dst] = value
            out[user_id] = profile
        return out

    # --- single events -------------------------------------------------------

    async def _event_in_room(self, conn: DbConnection, room: RoomInfo, event_id: str) -> StoredEvent | None:
        stored = (await self._events.by_ids(conn, [event_id])).get(event_id)
        if stored is None or stored.room_nid != room.room_nid or stored.stream_ordering is None:
            return None
        return stored if stored.rejected_reason is None else None

    async def event(self, requester: Requester, room_id: str, event_id: str) -> dict[str, Any]:
        """GET /event/{eventId}: 404 unless the event exists here and the user may see it."""
        room = await self._room(room_id, event_missing=True)
        async with self._db.read() as conn:
            viewer = await self._visibility.viewer(conn, room, requester.user_id)
            stored = await self._event_in_room(conn, room, event_id)
            if stored is None or not await viewer.allows(conn, stored):
                raise not_found("Event not found")
            served = await self._serializer.serialize(
                conn, [stored], user_id=requester.user_id, device_id=requester.device_id,
                viewer=viewer, prev_content=True,
            )
            return served[0]

    async def visible_event(self, conn: DbConnection, room: RoomInfo, viewer: Viewer, event_id: str
                            ) -> StoredEvent | None:
        """The event if it is in `room`'s timeline and `viewer` may see it."""
        stored = await self._event_in_room(conn, room, event_id)
        if stored is None or not await viewer.allows(conn, stored):
            return None
        return stored

    # --- pagination ----------------------------------------------------------

    async def _resolve(self, conn: DbConnection, room: RoomInfo, token: Token) -> Pos:
        if token.pos is not None:
            return token.pos
        assert token.stream is not None
        row = await self._timeline.at_stream(conn, room.room_nid, token.stream)
        return row.pos if row is not None else BEFORE_ALL

    async def _scan(
        self,
        conn: DbConnection,
        room: RoomInfo,
        viewer: Viewer,
        *,
        after: Pos | None,
        upto: Pos | None,
        backwards: bool,
        limit: int,
        match: EventMatch | None,
        keep: PostFilter,
    ) -> Scan:
        """Up to `limit` events in (after, upto] the user may see, nearest the start first."""
        taken: list[StoredEvent] = []
        boundary: Pos | None = None
        first: Pos | None = None
        scanned = 0
        batch = limit + 1
        while limit > 0:
            rows = await self._timeline.page(
                conn, room.room_nid, after=after, upto=upto, backwards=backwards, limit=batch, match=match
            )
            if first is None and rows:
                first = rows[0].pos
            loaded = await self._events.by_nids(conn, [r.event_nid for r in rows])
            candidates = [loaded[r.event_nid] for r in rows if r.event_nid in loaded]
            visible = {s.event_nid for s in await viewer.filter(conn, candidates) if keep(s)}
            for i, row in enumerate(rows):
                boundary = before(row.pos) if backwards else row.pos
                if row.event_nid in visible:
                    taken.append(loaded[row.event_nid])
                    if len(taken) == limit:
                        more = i + 1 < len(rows) or len(rows) == batch
                        return Scan(taken, boundary, more=more, first=first)
            if len(rows) < batch:
                return Scan(taken, boundary, more=False, first=first)
            scanned += len(rows)
            if scanned >= _SCAN_BUDGET:
                return Scan(taken, boundary, more=True, first=first)
            if backwards:
                upto = boundary
            else:
                after = boundary
            batch = min(max(batch * 2, 50), 500)
        return Scan(taken, boundary, more=True, first=first)

    async def messages(
        self,
        requester: Requester,
        room_id: str,
        *,
        from_token: str | None,
        to_token: str | None,
        backwards: bool,
        limit: int,
        flt: RoomEventFilter | None,
    ) -> dict[str, Any]:
        """GET /messages."""
        start_tok = Token.parse(from_token, "from") if from_token is not None else None
        end_tok = Token.parse(to_token, "to") if to_token is not None else None
        if flt is not None and flt.limit is not None:
            limit = min(limit, flt.limit)
        room = await self._room(room_id)
        keep = PostFilter(contains_url=flt.contains_url if flt else None,
                          ignored=await self._ignored(requester.user_id))
        async with self._db.read() as conn:
            viewer = await self._visibility.viewer(conn, room, requester.user_id)
            bound = await viewer.timeline_bound(conn)
            from_pos = await self._resolve(conn, room, start_tok) if start_tok else None
            to_pos = await self._resolve(conn, room, end_tok) if end_tok else None
            if backwards:
                upto, after = _earliest(from_pos, bound), to_pos
            else:
                upto, after = _earliest(to_pos, bound), from_pos
            if room_excluded(flt, room_id):
                scan = Scan([], None, more=False)
            else:
                scan = await self._scan(conn, room, viewer, after=after, upto=upto, backwards=backwards,
                                        limit=limit, match=event_match(flt), keep=keep)
            if from_token is not None:
                start = from_token
            elif backwards:
                start = topo_token(upto or scan.first or BEFORE_ALL)
            else:
                start = topo_token(BEFORE_ALL)
            response: dict[str, Any] = {
                "start": start,
                "chunk": await self._serializer.serialize(
                    conn, scan.events, user_id=requester.user_id, device_id=requester.device_id,
                    viewer=viewer, prev_content=True,
                ),
                "state": [],
            }
            # Forwards, the live end of the room can still grow: keep handing out a token there.
            open_ended = not backwards and upto is None and bool(scan.events)
            if scan.boundary is not None and (scan.more or open_ended):
                response["end"] = topo_token(scan.boundary)
            if flt is not None and flt.lazy_load_members and scan.events:
                response["state"] = await self._lazy_members(
                    conn, requester, scan.events[0].state_after_nid, {s.event.sender for s in scan.events}
                )
            return response

    async def _lazy_members(
        self, conn: DbConnection, requester: Requester, snapshot: int | None, senders: set[str]
    ) -> list[dict[str, Any]]:
        """The member events of `senders` in a snapshot (lazy-loading members)."""
        if snapshot is None or not senders:
            return []
        keys = await self._state.key_nids(conn, [("m.room.member", u) for u in senders], create=False)
        entries = (await self._timeline.entries_at(conn, [snapshot], keys.values())).get(snapshot, {})
        found = await self._events.by_nids(conn, entries.values())
        ordered = sorted(found.values(), key=lambda s: s.event.state_key or "")
        return await self._serializer.serialize(
            conn, ordered, user_id=requester.user_id, device_id=requester.device_id
        )

    async def context(
        self, requester: Requester, room_id: str, event_id: str, *, limit: int, flt: RoomEventFilter | None
    ) -> dict[str, Any]:
        """GET /context/{eventId}: the event, `limit` events around it, and the state at the last one."""
        room = await self._room(room_id, event_missing=True)
        keep = PostFilter(contains_url=flt.contains_url if flt else None,
                          ignored=await self._ignored(requester.user_id))
        match = event_match(flt)
        async with self._db.read() as conn:
            viewer = await self._visibility.viewer(conn, room, requester.user_id)
            bound = await viewer.timeline_bound(conn)
            target = await self.visible_event(conn, room, viewer, event_id)
            if target is None or target.stream_ordering is None:
                raise not_found("Event not found")
            pos = (target.event.depth, target.stream_ordering)
            excluded = room_excluded(flt, room_id)
            before_limit = 0 if excluded else limit // 2
            after_limit = 0 if excluded else limit - limit // 2
            older = await self._scan(conn, room, viewer, after=None, upto=before(pos), backwards=True,
                                     limit=before_limit, match=match, keep=keep)
            newer = await self._scan(conn, room, viewer, after=pos, upto=bound, backwards=False,
                                     limit=after_limit, match=match, keep=keep)
            last = newer.events[-1] if newer.events else target
            state = await self._context_state(conn, last, [target, *older.events, *newer.events], flt, match)

            def serialize(events: Sequence[StoredEvent], *, timeline: bool = True) -> Any:
                return self._serializer.serialize(
                    conn, events, user_id=requester.user_id, device_id=requester.device_id,
                    viewer=viewer if timeline else None, prev_content=timeline,
                )

            return {
                "event": (await serialize([target]))[0],
                "events_before": await serialize(older.events),
                "events_after": await serialize(newer.events),
                "state": await serialize(state, timeline=False),
                "start": topo_token(older.boundary or before(pos)),
                "end": topo_token(newer.boundary or pos),
            }

    async def _context_state(
        self,
        conn: DbConnection,
        last: StoredEvent,
        shown: Sequence[StoredEvent],
        flt: RoomEventFilter | None,
        match: EventMatch | None,
    ) -> list[StoredEvent]:
        snapshot = last.state_after_nid
        if snapshot is None:
            return []
        full = await self._state.load(conn, snapshot)
        keys = await self._state.keys_for_nids(conn, full)
        if flt is not None and flt.lazy_load_members:
            senders = {s.event.sender for s in shown}
            full = {k: e for k, e in full.items() if keys[k][0] != "m.room.member" or keys[k][1] in senders}
        found = await self._events.by_nids(conn, full.values())
        chosen = [s for s in found.values() if match is None or match.matches(s.event)]
        return sorted(chosen, key=lambda s: s.event.state_tuple)

    async def timestamp_to_event(
        self, requester: Requester, room_id: str, ts: int, *, forwards: bool
    ) -> dict[str, Any]:
        """GET /timestamp_to_event: the visible event nearest `ts` in the direction asked."""
        room = await self._room(room_id)
        async with self._db.read() as conn:
            viewer = await self._visibility.viewer(conn, room, requester.user_id)
            bound = await viewer.timeline_bound(conn)
            skip, batch = 0, 20
            while skip < _SCAN_BUDGET:
                nids = await self._timeline.by_timestamp(
                    conn, room.room_nid, ts, forwards=forwards, skip=skip, limit=batch
                )
                loaded = await self._events.by_nids(conn, nids)
                candidates = [loaded[n] for n in nids if n in loaded]
                if bound is not None:
                    candidates = [s for s in candidates
                                  if (s.event.depth, s.stream_ordering or 0) <= bound]
                visible = await viewer.filter(conn, candidates)
                if visible:
                    hit = visible[0]
                    return {"event_id": hit.event_id, "origin_server_ts": hit.event.origin_server_ts}
                if len(nids) < batch:
                    break
                skip += batch
                batch = min(batch * 2, 200)
        direction = "forward" if forwards else "backward"
        raise not_found(f"Unable to find event from {ts} in {direction} direction")

    async def initial_sync(self, requester: Requester, room_id: str, *, limit: int) -> dict[str, Any]:
        """GET /rooms/{roomId}/initialSync: state, latest messages and account data for one room."""
        room = await self._room(room_id)
        keep = PostFilter(ignored=await self._ignored(requester.user_id))
        async with self._db.read() as conn:
            viewer = await self._visibility.viewer(conn, room, requester.user_id)
            nids = await self._state_nids(conn, room, viewer)
            bound = await viewer.timeline_bound(conn)
            scan = await self._scan(conn, room, viewer, after=None, upto=bound, backwards=True,
                                    limit=limit, match=None, keep=keep)
            found = await self._events.by_nids(conn, nids.values())
            state = sorted(found.values(), key=lambda s: s.event.state_tuple)
            chronological = list(reversed(scan.events))
            messages: dict[str, Any] = {
                "chunk": await self._serializer.serialize(
                    conn, chronological, user_id=requester.user_id, device_id=requester.device_id,
                    viewer=viewer, prev_content=True,
                ),
                "end": topo_token(bound or scan.first or BEFORE_ALL),
            }
            if scan.more and scan.boundary is not None:
                messages["start"] = topo_token(scan.boundary)
            response: dict[str, Any] = {
                "room_id": room_id,
                "messages": messages,
                "state": await self._serializer.serialize(
                    conn, state, user_id=requester.user_id, device_id=requester.device_id
                ),
                "visibility": "public" if await self._timeline.is_public(conn, room.room_nid) else "private",
                "account_data": await self._timeline.room_account_data(conn, requester.user_id, room_id),
            }
            if viewer.membership is not None:
                response["membership"] = viewer.membership
            return response
