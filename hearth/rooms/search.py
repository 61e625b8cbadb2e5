"""Server-side search of room events (POST /search, category `room_events`).

What is searched: the text of m.room.message (`content.body`), m.room.name
(`content.name`) and m.room.topic (`content.topic`) events, indexed when they
are stored (`hearth.storage.search`). The search term is split into words;
an event matches when its text has every word, each as the start of a word,
after stemming (FTS5's porter tokenizer on SQLite, the english text search
configuration on PostgreSQL).

Who sees what: the database only looks at rooms the user is joined to or has
left (up to their departure), never forgotten ones; every candidate then
passes the room's history visibility (`Viewer.filter`), and events from
ignored users are left out. `count` is the number of matches before the
per-event visibility check, so it is approximate, as the spec allows.

Ordering and pagination: `rank` (best first, the default) pages by offset,
`recent` (newest first) by stream position. `next_batch` is opaque
(base64 JSON of the position and, for a group's token, the group). Group
tokens are handed out for `recent` ordering only: a group's offset in a
ranked listing is not known without reading every other group's rows.

Context (`event_context`) is read per result with the same position tokens
as /context; `profile_info` comes from the senders' member events in the
state after the result. `include_state` gives the current state of each
room in the results (or the state when the user left).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hearth.clock import Clock
from hearth.errors import invalid_param
from hearth.rooms.reading import PostFilter, before, event_match, topo_token
from hearth.rooms.serialize import EventSerializer
from hearth.rooms.visibility import HistoryVisibility, Viewer
from hearth.storage.account_data import AccountDataStore
from hearth.storage.db import Database, DbConnection
from hearth.storage.events import EventsStore, StoredEvent
from hearth.storage.rooms import RoomInfo
from hearth.storage.search import SEARCH_KEYS, SearchHit, SearchQuery, SearchStore
from hearth.storage.state import StateStore
from hearth.storage.timeline import Pos, TimelineStore
from hearth.users.filters import RoomEventFilter
from hearth.users.sessions import Requester

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_CONTEXT = 100
_MAX_WORDS = 32
_MAX_WORD_CHARS = 100
# Rows read beyond `limit` while skipping events the user may not see.
_SCAN_BUDGET = 1000
_WORD = re.compile(r"\w+")


def search_words(term: str) -> list[str]:
    """The words of a search term, lower-cased, without repeats."""
    words = [w[:_MAX_WORD_CHARS] for w in _WORD.findall(term.lower())]
    return list(dict.fromkeys(words))[:_MAX_WORDS]


@dataclass(frozen=True, slots=True)
class EventContextSpec:
    before_limit: int = 5
    after_limit: int = 5
    include_profile: bool = False


@dataclass(frozen=True, slots=True)
class RoomEventsCriteria:
    """The `room_events` category of a search request, validated by the API layer."""

    search_term: str
    keys: Sequence[str] = SEARCH_KEYS
    filter: RoomEventFilter | None = None
    order_by: str = "rank"
    event_context: EventContextSpec | None = None
    include_state: bool = False
    group_by: Sequence[str] = ()


@dataclass
class _Position:
    """Where a page starts: an offset (rank order) or below a stream position (recent order)."""

    offset: int = 0
    before_stream: int | None = None
    group: tuple[str, str] | None = None

    def encode(self) -> str:
        data: dict[str, Any] = (
            {"s": self.before_stream} if self.before_stream is not None else {"o": self.offset}
        )
        if self.group is not None:
            data["g"] = list(self.group)
        return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()

    @classmethod
    def decode(cls, token: str) -> _Position:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        except (ValueError, binascii.Error, UnicodeError):
            raise invalid_param("Unknown next_batch token") from None
        if not isinstance(data, dict):
            raise invalid_param("Unknown next_batch token")
        pos = cls()
        offset, stream, group = data.get("o"), data.get("s"), data.get("g")
        if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0:
            pos.offset = offset
        elif isinstance(stream, int) and not isinstance(stream, bool):
            pos.before_stream = stream
        else:
            raise invalid_param("Unknown next_batch token")
        if group is not None:
            if (not isinstance(group, list) or len(group) != 2 or group[0] not in ("room_id", "sender")
                    or not isinstance(group[1], str)):
                raise invalid_param("Unknown next_batch token")
            pos.group = (group[0], group[1])
        return pos


@dataclass
class _Page:
    hits: list[tuple[SearchHit, StoredEvent]] = field(default_factory=list)
    more: bool = False
    next_position: _Position | None = None


def _room_of(stored: StoredEvent) -> RoomInfo:
    return RoomInfo(stored.room_nid, stored.event.room_id, stored.event.room_version)


class SearchService:
    def __init__(
        self,
        *,
        db: Database,
        store: SearchStore,
        events: EventsStore,
        state: StateStore,
        timeline: TimelineStore,
        visibility: HistoryVisibility,
        serializer: EventSerializer,
        account_data: AccountDataStore,
        clock: Clock,
    ) -> None:
        self._db = db
        self._store = store
        self._events = events
        self._state = state
        self._timeline = timeline
        self._visibility = visibility
        self._serializer = serializer
        self._account_data = account_data
        self._clock = clock

    async def _ignored(self, user_id: str) -> frozenset[str]:
        content = await self._account_data.get(user_id, "", "m.ignored_user_list")
        ignored = content.get("ignored_users") if content else None
        return frozenset(ignored) if isinstance(ignored, dict) else frozenset()

    async def search(
        self, requester: Requester, criteria: RoomEventsCriteria, *, next_batch: str | None = None
    ) -> dict[str, Any]:
        """The `room_events` result object."""
        position = _Position.decode(next_batch) if next_batch is not None else _Position()
        by_rank = criteria.order_by != "recent"
        if next_batch is not None and by_rank != (position.before_stream is None):
            raise invalid_param("next_batch does not belong to this ordering")
        flt = criteria.filter
        limit = min(flt.limit, MAX_LIMIT) if flt is not None and flt.limit is not None else DEFAULT_LIMIT
        limit = max(limit, 0)
        user_id = requester.user_id
        query = SearchQuery(
            user_id=user_id,
            words=search_words(criteria.search_term),
            keys=criteria.keys or SEARCH_KEYS,
            room_ids=flt.rooms if flt is not None else None,
            not_room_ids=(flt.not_rooms or ()) if flt is not None else (),
            match=event_match(flt),
            not_senders=await self._ignored(user_id),
            group=position.group,
        )
        keep = PostFilter(contains_url=flt.contains_url if flt is not None else None)
        viewers: dict[int, Viewer] = {}
        async with self._db.read() as conn:
            count = await self._store.count(conn, query)
            page = await self._page(conn, query, position, by_rank=by_rank, limit=limit, keep=keep,
                                    viewers=viewers)
            events = [stored for _, stored in page.hits]
            served = await self._serialize(conn, requester, events, viewers)
            results: list[dict[str, Any]] = [
                {"rank": hit.rank, "result": served[stored.event_id]} for hit, stored in page.hits
            ]
            if criteria.event_context is not None:
                contexts = await self._contexts(conn, requester, events, criteria.event_context, viewers)
                for result, stored in zip(results, events, strict=True):
                    result["context"] = contexts[stored.event_id]
            out: dict[str, Any] = {
                "count": count,
                "results": results,
                "highlights": _highlights(query.words, [hit.value for hit, _ in page.hits]),
            }
            if criteria.include_state:
                out["state"] = await self._room_states(conn, requester, events, viewers)
        if page.more and page.next_position is not None:
            out["next_batch"] = page.next_position.encode()
        if criteria.group_by:
            out["groups"] = self._groups(criteria.group_by, events, page, by_rank)
        return out

    async def _page(
        self, conn: DbConnection, query: SearchQuery, position: _Position, *, by_rank: bool, limit: int,
        keep: PostFilter, viewers: dict[int, Viewer],
    ) -> _Page:
        page = _Page()
        offset, before_stream = position.offset, position.before_stream
        scanned, batch = 0, limit + 1
        while limit > 0:
            hits = await self._store.search(
                conn, query, by_rank=by_rank, before_stream=before_stream, offset=offset, limit=batch
            )
            loaded = await self._events.by_nids(conn, [h.event_nid for h in hits])
            shown = await self._filter(conn, list(loaded.values()), viewers, query.user_id)
            visible = {s.event_nid for s in shown if keep(s)}
            for i, hit in enumerate(hits):
                offset += 1
                before_stream = hit.stream_ordering
                if hit.event_nid in visible:
                    page.hits.append((hit, loaded[hit.event_nid]))
                    if len(page.hits) == limit:
                        page.more = i + 1 < len(hits) or len(hits) == batch
                        break
            scanned += len(hits)
            if len(page.hits) == limit or len(hits) < batch:
                break
            if scanned >= _SCAN_BUDGET:
                page.more = True
                break
            batch = min(max(batch * 2, 50), 500)
        if by_rank:
            page.next_position = _Position(offset=offset, group=position.group)
        elif before_stream is not None:
            page.next_position = _Position(before_stream=before_stream, group=position.group)
        return page

    async def _viewer(self, conn: DbConnection, stored: StoredEvent, viewers: dict[int, Viewer],
                      user_id: str) -> Viewer:
        viewer = viewers.get(stored.room_nid)
        if viewer is None:
            viewer = await self._visibility.viewer(conn, _room_of(stored), user_id)
            viewers[stored.room_nid] = viewer
        return viewer

    async def _filter(self, conn: DbConnection, events: Sequence[StoredEvent],
                      viewers: dict[int, Viewer], user_id: str) -> list[StoredEvent]:
        """The events (of any rooms) that history visibility lets the user see."""
        by_room: dict[int, list[StoredEvent]] = {}
        for stored in events:
            by_room.setdefault(stored.room_nid, []).append(stored)
        visible: set[int] = set()
        for room_events in by_room.values():
            viewer = await self._viewer(conn, room_events[0], viewers, user_id)
            visible.update(s.event_nid for s in await viewer.filter(conn, room_events))
        return [s for s in events if s.event_nid in visible]

    async def _serialize(
        self, conn: DbConnection, requester: Requester, events: Sequence[StoredEvent],
        viewers: dict[int, Viewer],
    ) -> dict[str, dict[str, Any]]:
        """{event_id: client event}, one serializer call per room."""
        by_room: dict[int, list[StoredEvent]] = {}
        for stored in events:
            by_room.setdefault(stored.room_nid, []).append(stored)
        out: dict[str, dict[str, Any]] = {}
        for room_nid, room_events in by_room.items():
            served = await self._serializer.serialize(
                conn, room_events, user_id=requester.user_id, device_id=requester.device_id,
                viewer=viewers.get(room_nid),
            )
            out.update({s.event_id: body for s, body in zip(room_events, served, strict=True)})
        return out

    # --- context ---------------------------------------------------------------

    async def _scan(
        self, conn: DbConnection, viewer: Viewer, *, after: Pos | None, upto: Pos | None, backwards: bool,
        limit: int,
    ) -> tuple[list[StoredEvent], Pos | None]:
        """Up to `limit` visible events in (after, upto], nearest the start first, and where it stopped."""
        taken: list[StoredEvent] = []
        boundary: Pos | None = None
        scanned, batch = 0, limit + 1
        while limit > 0 and scanned < _SCAN_BUDGET:
            rows = await self._timeline.page(
                conn, viewer.room.room_nid, after=after, upto=upto, backwards=backwards, limit=batch
            )
            loaded = await self._events.by_nids(conn, [r.event_nid for r in rows])
            visible = {s.event_nid for s in await viewer.filter(conn, list(loaded.values()))}
            for row in rows:
                boundary = before(row.pos) if backwards else row.pos
                if row.event_nid in visible:
                    taken.append(loaded[row.event_nid])
                    if len(taken) == limit:
                        return taken, boundary
            if len(rows) < batch:
                break
            scanned += len(rows)
            if backwards:
                upto = boundary
            else:
                after = boundary
            batch = min(max(batch * 2, 50), 500)
        return taken, boundary

    async def _contexts(
        self, conn: DbConnection, requester: Requester, results: Sequence[StoredEvent],
        spec: EventContextSpec, viewers: dict[int, Viewer],
    ) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        senders_at: dict[str, tuple[int | None, set[str]]] = {}
        for stored in results:
            viewer = viewers[stored.room_nid]
            assert stored.stream_ordering is not None
            pos = (stored.event.depth, stored.stream_ordering)
            bound = await viewer.timeline_bound(conn)
            older, older_end = await self._scan(conn, viewer, after=None, upto=before(pos), backwards=True,
                                                limit=min(spec.before_limit, MAX_CONTEXT))
            newer, newer_end = await self._scan(conn, viewer, after=pos, upto=bound, backwards=False,
                                                limit=min(spec.after_limit, MAX_CONTEXT))
            served = await self._serializer.serialize(
                conn, [*older, *newer], user_id=requester.user_id, device_id=requester.device_id,
                viewer=viewer,
            )
            out[stored.event_id] = {
                "events_before": served[: len(older)],
                "events_after": served[len(older):],
                "start": topo_token(older_end or before(pos)),
                "end": topo_token(newer_end or pos),
            }
            senders = {s.event.sender for s in (stored, *older, *newer)}
            senders_at[stored.event_id] = (stored.state_after_nid, senders)
        if spec.include_profile:
            profiles = await self._profiles(conn, senders_at)
            for event_id, context in out.items():
                context["profile_info"] = profiles.get(event_id, {})
        return out

    async def _profiles(
        self, conn: DbConnection, senders_at: dict[str, tuple[int | None, set[str]]]
    ) -> dict[str, dict[str, dict[str, str]]]:
        """{result event id: {sender: {displayname, avatar_url}}} from member events after each result."""
        snapshots = {snap for snap, _ in senders_at.values() if snap is not None}
        users = {u for _, senders in senders_at.values() for u in senders}
        keys = await self._state.key_nids(conn, [("m.room.member", u) for u in users], create=False)
        entries = await self._timeline.entries_at(conn, snapshots, keys.values())
        members = await self._events.by_nids(conn, {e for found in entries.values() for e in found.values()})
        out: dict[str, dict[str, dict[str, str]]] = {}
        for event_id, (snapshot, senders) in senders_at.items():
            found = entries.get(snapshot, {}) if snapshot is not None else {}
            info: dict[str, dict[str, str]] = {}
            for user_id in senders:
                key = keys.get(("m.room.member", user_id))
                member = members.get(found[key]) if key is not None and key in found else None
                profile: dict[str, str] = {}
                if member is not None and not member.redacted_by:
                    for name in ("displayname", "avatar_url"):
                        value = member.event.content.get(name)
                        if isinstance(value, str):
                            profile[name] = value
                info[user_id] = profile
            out[event_id] = info
        return out

    # --- state and groups ------------------------------------------------------

    async def _room_states(
        self, conn: DbConnection, requester: Requester, results: Sequence[StoredEvent],
        viewers: dict[int, Viewer],
    ) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for room_nid in dict.fromkeys(s.room_nid for s in results):
            viewer = viewers[room_nid]
            snapshot = await viewer.state_snapshot(conn)
            if snapshot is None:
                nids = await self._state.current_event_nids(conn, room_nid)
            else:
                nids = await self._state.load(conn, snapshot)
            found = await self._events.by_nids(conn, nids.values())
            ordered = sorted(found.values(), key=lambda s: s.event.state_tuple)
            out[viewer.room.room_id] = await self._serializer.serialize(
                conn, ordered, user_id=requester.user_id, device_id=requester.device_id
            )
        return out

    @staticmethod
    def _groups(
        keys: Sequence[str], events: Sequence[StoredEvent], page: _Page, by_rank: bool
    ) -> dict[str, dict[str, dict[str, Any]]]:
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for key in dict.fromkeys(keys):
            groups: dict[str, dict[str, Any]] = {}
            last: dict[str, int | None] = {}
            for stored in events:
                value = stored.event.room_id if key == "room_id" else stored.event.sender
                group = groups.get(value)
                if group is None:
                    group = {"results": [], "order": len(groups) + 1}
                    groups[value] = group
                group["results"].append(stored.event_id)
                last[value] = stored.stream_ordering
            if page.more and not by_rank:
                for value, group in groups.items():
                    group["next_batch"] = _Position(before_stream=last[value], group=(key, value)).encode()
            out[key] = groups
        return out


def _highlights(words: Sequence[str], texts: Sequence[str]) -> list[str]:
    """The search words, and the words of the matched texts that they are the start of."""
    found = set(words)
    for text in texts:
        for token in _WORD.findall(text.lower()):
            if any(token.startswith(w) for w in words):
                found.add(token)
    return sorted(found)

