"""Describing rooms to people who may not be in them: summaries and space hierarchies.

Serves `GET /v1/room_summary/{roomIdOrAlias}` and `GET /v1/rooms/{roomId}/hierarchy`,
and builds the chunks of `/publicRooms` (hearth.rooms.directory).

A `RoomSummary` is read from a handful of current-state keys plus the joined
member count. Summaries are computed in batches (one query per kind of data
for all rooms asked about) and cached per room, keyed by the room's current
state snapshot: any state change, membership included, moves the snapshot, so
a cached summary is valid exactly while the snapshot is unchanged. The one
change that does not move the snapshot, the redaction of a state event, is
covered by a notifier listener that marks a cached room dirty on any new event
in it.

Who may see a room's summary (room_summary.yaml, space_hierarchy.yaml): anyone
if its join rule is `public` or knockable or its history is `world_readable`;
else a user who is joined, invited or knocking, or who may join a `restricted`
room through one of its allowed rooms. Other rooms are reported as not found
(summary) or forbidden (hierarchy root), never described.

The hierarchy is a depth-first walk of `m.space.child` state over rooms this
server knows; rooms on other servers need the federation hierarchy API and are
skipped for now. Children are visited in the spec's order (`order`, then the
child event's timestamp, then room ID), each room at most once per walk (so
loops end). Only spaces are descended into. A page's remaining walk is kept in
memory under an opaque `next_batch` token for a few minutes (`HierarchySessions`).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hearth.clock import Clock
from hearth.core.events import Event, StateKey
from hearth.core.redaction import redact_event
from hearth.core.room_versions import RoomVersion
from hearth.errors import forbidden, invalid_param, not_found
from hearth.notifier import Notifier
from hearth.storage.db import Database, DbConnection
from hearth.storage.directory import DirectoryStore, RoomRow
from hearth.storage.events import EventsStore
from hearth.storage.state import StateStore

CREATE_KEY: StateKey = ("m.room.create", "")
NAME_KEY: StateKey = ("m.room.name", "")
TOPIC_KEY: StateKey = ("m.room.topic", "")
CANONICAL_ALIAS_KEY: StateKey = ("m.room.canonical_alias", "")
AVATAR_KEY: StateKey = ("m.room.avatar", "")
JOIN_RULES_KEY: StateKey = ("m.room.join_rules", "")
HISTORY_VISIBILITY_KEY: StateKey = ("m.room.history_visibility", "")
GUEST_ACCESS_KEY: StateKey = ("m.room.guest_access", "")
ENCRYPTION_KEY: StateKey = ("m.room.encryption", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")
SUMMARY_KEYS = (
    CREATE_KEY,
    NAME_KEY,
    TOPIC_KEY,
    CANONICAL_ALIAS_KEY,
    AVATAR_KEY,
    JOIN_RULES_KEY,
    HISTORY_VISIBILITY_KEY,
    GUEST_ACCESS_KEY,
    ENCRYPTION_KEY,
)
SPACE_CHILD = "m.space.child"
SPACE_TYPE = "m.space"
# Memberships that let a user see a room's summary whatever its settings.
_SEEING_MEMBERSHIPS = frozenset({"join", "invite", "knock"})


class StateReader:
    """A few keys of rooms' current state, read without the rooms' write locks.

    Redacted events are returned redacted. For a decision that must hold
    while an event is sent, the auth rules at persist time remain the judge;
    this is for reading and for early, friendly refusals.
    """

    def __init__(
        self, *, db: Database, state: StateStore, events: EventsStore, directory: DirectoryStore
    ) -> None:
        self._db = db
        self._state = state
        self._events = events
        self._directory = directory

    async def events(
        self, conn: DbConnection, room_nids: Iterable[int], keys: Iterable[StateKey]
    ) -> dict[int, dict[StateKey, Event]]:
        """room nid -> {key: event} for the keys each room has in its current state."""
        key_nids = await self._state.key_nids(conn, keys, create=False)
        by_key_nid = {nid: key for key, nid in key_nids.items()}
        current = await self._directory.current_state(conn, room_nids, by_key_nid)
        event_nids = await self.by_nids(conn, [e for entries in current.values() for e in entries.values()])
        return {
            room_nid: {by_key_nid[k]: event_nids[e] for k, e in entries.items() if e in event_nids}
            for room_nid, entries in current.items()
        }

    async def by_nids(self, conn: DbConnection, event_nids: Iterable[int]) -> dict[int, Event]:
        """Events by nid, redacted where a redaction applies to them."""
        stored = await self._events.by_nids(conn, event_nids)
        return {
            nid: redact_event(s.event) if s.redacted_by is not None else s.event for nid, s in stored.items()
        }

    async def room_events(self, room_nid: int, keys: Iterable[StateKey]) -> dict[StateKey, Event]:
        async with self._db.read() as conn:
            return (await self.events(conn, [room_nid], keys)).get(room_nid, {})


def _string(content: Mapping[str, Any], key: str) -> str | None:
    value = content.get(key)
    return value if isinstance(value, str) and value else None


def plain_topic(content: Mapping[str, Any]) -> str | None:
    """The plain-text topic: the `text/plain` body of `m.topic`, else `topic`."""
    block = content.get("m.topic")
    texts = block.get("m.text") if isinstance(block, Mapping) else None
    if isinstance(texts, list):
        for text in texts:
            if (
                isinstance(text, Mapping)
                and text.get("mimetype", "text/plain") == "text/plain"
                and isinstance(text.get("body"), str)
                and text["body"]
            ):
                return str(text["body"])
    return _string(content, "topic")


@dataclass(frozen=True, slots=True)
class RoomSummary:
    room_id: str
    room_nid: int
    room_version: RoomVersion
    num_joined_members: int
    name: str | None = None
    topic: str | None = None
    canonical_alias: str | None = None
    avatar_url: str | None = None
    # "invite" when the room has no join rules event: that is what the auth rules do then.
    join_rule: str = "invite"
    history_visibility: str = "shared"
    guest_access: str | None = None
    room_type: str | None = None
    encryption: str | None = None
    allowed_room_ids: tuple[str, ...] = ()

    @property
    def world_readable(self) -> bool:
        return self.history_visibility == "world_readable"

    @property
    def guest_can_join(self) -> bool:
        return self.guest_access == "can_join"

    @property
    def knockable(self) -> bool:
        rv = self.room_version
        return (self.join_rule == "knock" and rv.knock_join_rule) or (
            self.join_rule == "knock_restricted" and rv.knock_restricted_join_rule
        )

    @property
    def restricted(self) -> bool:
        rv = self.room_version
        return (self.join_rule == "restricted" and rv.restricted_join_rule) or (
            self.join_rule == "knock_restricted" and rv.knock_restricted_join_rule
        )

    @property
    def open_to_all(self) -> bool:
        """Whether anyone (even unauthenticated) may see this room's summary."""
        return self.join_rule == "public" or self.knockable or self.world_readable

    def chunk(self) -> dict[str, Any]:
        """The PublishedRoomsChunk of /publicRooms."""
        out: dict[str, Any] = {
            "room_id": self.room_id,
            "num_joined_members": self.num_joined_members,
            "world_readable": self.world_readable,
            "guest_can_join": self.guest_can_join,
            "join_rule": self.join_rule,
        }
        for key in ("name", "topic", "canonical_alias", "avatar_url", "room_type"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    def summary(self) -> dict[str, Any]:
        """The RoomSummary of /room_summary and /hierarchy."""
        out = self.chunk()
        out["room_version"] = self.room_version.identifier
        if self.encryption is not None:
            out["encryption"] = self.encryption
        if self.allowed_room_ids:
            out["allowed_room_ids"] = list(self.allowed_room_ids)
        return out

    def matches(self, term: str) -> bool:
        """Whether a lower-cased search term occurs in the name, topic or canonical alias."""
        return any(term in value.lower() for value in (self.name, self.topic, self.canonical_alias) if value)


def _summary_from_state(row: RoomRow, state: Mapping[StateKey, Event], joined: int) -> RoomSummary:
    def content(key: StateKey) -> Mapping[str, Any]:
        event = state.get(key)
        return event.content if event is not None else {}

    join_rules = content(JOIN_RULES_KEY)
    allow = join_rules.get("allow")
    allowed = tuple(
        dict.fromkeys(
            a["room_id"]
            for a in (allow if isinstance(allow, list) else [])
            if isinstance(a, Mapping)
            and a.get("type") == "m.room_membership"
            and isinstance(a.get("room_id"), str)
        )
    )
    return RoomSummary(
        room_id=row.room_id,
        room_nid=row.room_nid,
        room_version=row.room_version,
        num_joined_members=joined,
        name=_string(content(NAME_KEY), "name"),
        topic=plain_topic(content(TOPIC_KEY)),
        canonical_alias=_string(content(CANONICAL_ALIAS_KEY), "alias"),
        avatar_url=_string(content(AVATAR_KEY), "url"),
        join_rule=_string(join_rules, "join_rule") or "invite",
        history_visibility=_string(content(HISTORY_VISIBILITY_KEY), "history_visibility") or "shared",
        guest_access=_string(content(GUEST_ACCESS_KEY), "guest_access"),
        room_type=_string(content(CREATE_KEY), "type"),
        encryption=_string(content(ENCRYPTION_KEY), "algorithm"),
        allowed_room_ids=allowed if row.room_version.restricted_join_rule else (),
    )


class RoomSummaries:
    """Batched, cached room summaries, and who may see them."""

    _CACHE_SIZE = 10_000

    def __init__(
        self, *, db: Database, reader: StateReader, directory: DirectoryStore, notifier: Notifier
    ) -> None:
        self._db = db
        self._reader = reader
        self._directory = directory
        self._cache: OrderedDict[str, tuple[int | None, RoomSummary]] = OrderedDict()
        self._dirty: set[str] = set()
        notifier.add_room_event_listener(self._on_room_event)

    def _on_room_event(self, room_id: str, _stream: int) -> None:
        if room_id in self._cache:
            self._dirty.add(room_id)

    async def for_rows(self, conn: DbConnection, rows: Sequence[RoomRow]) -> dict[str, RoomSummary]:
        """Summaries of the rooms (rooms without any state yet are left out)."""
        out: dict[str, RoomSummary] = {}
        stale: list[RoomRow] = []
        for row in rows:
            if row.snapshot_nid is None:
                continue
            hit = self._cache.get(row.room_id)
            if hit is not None and hit[0] == row.snapshot_nid and row.room_id not in self._dirty:
                self._cache.move_to_end(row.room_id)
                out[row.room_id] = hit[1]
            else:
                stale.append(row)
        if stale:
            # Clear the marks first: an event arriving while we read marks the room again.
            self._dirty.difference_update(r.room_id for r in stale)
            nids = [r.room_nid for r in stale]
            state = await self._reader.events(conn, nids, SUMMARY_KEYS)
            counts = await self._directory.joined_counts(conn, nids)
            for row in stale:
                summary = _summary_from_state(row, state.get(row.room_nid, {}), counts.get(row.room_nid, 0))
                out[row.room_id] = summary
                self._cache[row.room_id] = (row.snapshot_nid, summary)
            while len(self._cache) > self._CACHE_SIZE:
                evicted, _ = self._cache.popitem(last=False)
                self._dirty.discard(evicted)
        return out

    async def visible_to(
        self, conn: DbConnection, user_id: str | None, summaries: Iterable[RoomSummary]
    ) -> set[str]:
        """The room IDs among `summaries` whose summary `user_id` (None: anonymous) may see."""
        candidates = list(summaries)
        out = {s.room_id for s in candidates if s.open_to_all}
        if user_id is None:
            return out
        rest = [s for s in candidates if s.room_id not in out]
        if not rest:
            return out
        memberships = await self._directory.memberships(conn, user_id, [s.room_nid for s in rest])
        out.update(s.room_id for s in rest if memberships.get(s.room_nid) in _SEEING_MEMBERSHIPS)
        restricted = [s for s in rest if s.room_id not in out and s.restricted and s.allowed_room_ids]
        if restricted:
            allowed = await self._directory.rooms(conn, {r for s in restricted for r in s.allowed_room_ids})
            joined_nids = {
                nid
                for nid, m in (
                    await self._directory.memberships(conn, user_id, [r.room_nid for r in allowed.values()])
                ).items()
                if m == "join"
            }
            joined = {room_id for room_id, r in allowed.items() if r.room_nid in joined_nids}
            out.update(s.room_id for s in restricted if joined.intersection(s.allowed_room_ids))
        return out

    async def summary(self, user_id: str | None, room_id: str) -> dict[str, Any]:
        """GET /room_summary: the room's summary, or M_NOT_FOUND if the user may not see it."""
        async with self._db.read() as conn:
            row = (await self._directory.rooms(conn, [room_id])).get(room_id)
            found = await self.for_rows(conn, [row]) if row is not None else {}
            summary = found.get(room_id)
            if summary is None or room_id not in await self.visible_to(conn, user_id, [summary]):
                raise not_found(f"Room {room_id} not found or not visible to you")
            out = summary.summary()
            if user_id is not None:
                membership = (await self._directory.memberships(conn, user_id, [summary.room_nid])).get(
                    summary.room_nid
                )
                out["membership"] = membership or "leave"
        return out


# --- space hierarchy ---------------------------------------------------------------


def valid_via(content: Mapping[str, Any]) -> bool:
    """An m.space.child/parent link counts only with a non-empty list of server names."""
    via = content.get("via")
    return isinstance(via, list) and bool(via) and all(isinstance(v, str) and v for v in via)


def _valid_order(content: Mapping[str, Any]) -> str | None:
    order = content.get("order")
    if isinstance(order, str) and 0 < len(order) <= 50 and all("\x20" <= c <= "\x7e" for c in order):
        return order
    return None


def child_sort_key(event: Event) -> tuple[int, str, int, str]:
    """The spec's child order: valid `order` first (by code point), then timestamp, then room ID."""
    order = _valid_order(event.content)
    return (0 if order is not None else 1, order or "", event.origin_server_ts, event.state_key or "")


@dataclass(frozen=True, slots=True)
class _Walk:
    """Where a hierarchy walk stands between pages (immutable: each page makes a new one)."""

    user_id: str
    root: str
    suggested_only: bool
    max_depth: int
    stack: tuple[tuple[str, int], ...]  # (room ID, depth), next room last
    seen: frozenset[str]
    created: float


class HierarchySessions:
    """Walks to continue, under random tokens, for a few minutes (process-local)."""

    LIFETIME_S = 300.0
    MAX_SESSIONS = 1000

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._walks: OrderedDict[str, _Walk] = OrderedDict()

    def save(self, walk: _Walk) -> str:
        self._expire()
        token = secrets.token_urlsafe(16)
        self._walks[token] = walk
        while len(self._walks) > self.MAX_SESSIONS:
            self._walks.popitem(last=False)
        return token

    def get(self, token: str) -> _Walk | None:
        self._expire()
        return self._walks.get(token)

    def _expire(self) -> None:
        cutoff = self._clock.monotonic() - self.LIFETIME_S
        while self._walks:
            token, walk = next(iter(self._walks.items()))
            if walk.created >= cutoff:
                break
            del self._walks[token]


@dataclass(frozen=True, slots=True)
class _Node:
    """A visible room of the walk: its JSON entry and the children to descend into."""

    entry: dict[str, Any]
    children: tuple[str, ...]


class SpaceHierarchy:
    DEFAULT_LIMIT = 50
    MAX_LIMIT = 100
    MAX_DEPTH = 50
    # Children read per space; a space with more is cut (in state key order).
    MAX_CHILDREN = 1000
    # Rooms whose details are loaded together while walking.
    _PREFETCH = 50

    def __init__(
        self,
        *,
        db: Database,
        summaries: RoomSummaries,
        reader: StateReader,
        directory: DirectoryStore,
        clock: Clock,
    ) -> None:
        self._db = db
        self._summaries = summaries
        self._reader = reader
        self._directory = directory
        self._clock = clock
        self.sessions = HierarchySessions(clock)

    async def page(
        self,
        user_id: str,
        room_id: str,
        *,
        suggested_only: bool,
        max_depth: int | None,
        limit: int | None,
        from_token: str | None,
    ) -> dict[str, Any]:
        depth_cap = self.MAX_DEPTH if max_depth is None else min(max_depth, self.MAX_DEPTH)
        limit = min(limit or self.DEFAULT_LIMIT, self.MAX_LIMIT)
        if from_token is not None:
            walk = self.sessions.get(from_token)
            if walk is None or walk.user_id != user_id or walk.root != room_id:
                raise invalid_param("Unknown or expired pagination token")
            if walk.suggested_only != suggested_only or walk.max_depth != depth_cap:
                raise invalid_param("suggested_only and max_depth cannot change on paginated requests")
        else:
            walk = _Walk(
                user_id,
                room_id,
                suggested_only,
                depth_cap,
                ((room_id, 0),),
                frozenset(),
                self._clock.monotonic(),
            )
        stack = list(walk.stack)
        seen = set(walk.seen)
        nodes: dict[str, _Node | None] = {}
        rooms: list[dict[str, Any]] = []
        async with self._db.read() as conn:
            if from_token is None:
                await self._load(conn, user_id, [room_id], suggested_only, nodes)
                if nodes.get(room_id) is None:
                    raise forbidden("You may not view this room, or it is not known here")
            while stack and len(rooms) < limit:
                current, depth = stack.pop()
                if current in seen:
                    continue
                if current not in nodes:
                    upcoming = [r for r, _ in reversed(stack) if r not in seen and r not in nodes]
                    await self._load(
                        conn, user_id, [current, *upcoming[: self._PREFETCH]], suggested_only, nodes
                    )
                seen.add(current)
                node = nodes[current]
                if node is None:
                    continue
                rooms.append(node.entry)
                if depth < walk.max_depth:
                    stack.extend((child, depth + 1) for child in reversed(node.children) if child not in seen)
        while stack and stack[-1][0] in seen:
            stack.pop()
        out: dict[str, Any] = {"rooms": rooms}
        if stack:
            out["next_batch"] = self.sessions.save(
                _Walk(
                    user_id,
                    room_id,
                    suggested_only,
                    walk.max_depth,
                    tuple(stack),
                    frozenset(seen),
                    self._clock.monotonic(),
                )
            )
        return out

    async def _load(
        self,
        conn: DbConnection,
        user_id: str,
        room_ids: Sequence[str],
        suggested_only: bool,
        nodes: dict[str, _Node | None],
    ) -> None:
        """Details of several rooms at once; None for rooms unknown here or hidden from the user."""
        rows = await self._directory.rooms(conn, room_ids)
        summaries = await self._summaries.for_rows(conn, list(rows.values()))
        visible = await self._summaries.visible_to(conn, user_id, summaries.values())
        spaces = [s for s in summaries.values() if s.room_id in visible and s.room_type == SPACE_TYPE]
        child_nids = await self._directory.current_state_of_type(
            conn, [s.room_nid for s in spaces], SPACE_CHILD, self.MAX_CHILDREN
        )
        events = await self._reader.by_nids(conn, [e for c in child_nids.values() for e in c.values()])
        for room_id in room_ids:
            summary = summaries.get(room_id)
            if summary is None or room_id not in visible:
                nodes[room_id] = None
                continue
            children = [
                event
                for nid in child_nids.get(summary.room_nid, {}).values()
                if (event := events.get(nid)) is not None
                and valid_via(event.content)
                and (not suggested_only or event.content.get("suggested") is True)
            ]
            children.sort(key=child_sort_key)
            entry = summary.summary()
            entry["children_state"] = [
                {
                    "type": event.type,
                    "state_key": event.state_key,
                    "content": dict(event.content),
                    "sender": event.sender,
                    "origin_server_ts": event.origin_server_ts,
                }
                for event in children
            ]
            nodes[room_id] = _Node(entry, tuple(e.state_key or "" for e in children))
