"""Event relationships: child events, bundled aggregations, threads.

`RelationsService` serves

- GET /relations/{eventId}[/{relType}[/{eventType}]]: the children of an event
  the user may see, newest first (or oldest first with dir=f), paginated with
  the same position tokens as /messages (`hearth.rooms.reading`); with
  `recurse`, children of children too, down to `RECURSION_DEPTH` levels;
- GET /threads: the room's thread roots by latest activity;
- `RelationRules`: the checks on sending a thread event or an annotation;
- `unsigned["m.relations"]` on every event the shared serializer serves
  (`unsigned`, registered with `EventSerializer.add_unsigned_hook`).

Bundled aggregations (client-server spec, "Aggregations of child events"):

- `m.thread`: `latest_event` (the newest thread event the user may see, served
  with its own `m.replace` bundle), `count` and `current_user_participated`
  (the user sent the root or a thread event);
- `m.replace`: the most recent *valid* edit (same sender, same type, neither
  is a state event, the original is not itself an edit, the edit has
  `m.new_content`), most recent by origin_server_ts then event_id; never for
  a redacted original. The original's content is left as it is;
- `m.reference`: `{"chunk": [{"event_id": ...}]}`, oldest first.

Annotations are not aggregated (the spec says servers do not). State events
get no bundles. Children from ignored users do not count, and every child that
is served in full or by id passes the user's history visibility.

Cost: one grouped query for a whole batch of served events finds which have
any aggregated children; only those cost further (batched) queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hearth.clock import Clock
from hearth.core.redaction import redact
from hearth.errors import MatrixError, forbidden, invalid_param, not_found
from hearth.rooms.formatting import client_event
from hearth.rooms.reading import Token, before, topo_token
from hearth.rooms.serialize import EventSerializer
from hearth.rooms.visibility import HistoryVisibility, Viewer
from hearth.storage.account_data import AccountDataStore
from hearth.storage.db import Database, DbConnection
from hearth.storage.events import EventsStore, StoredEvent, relation_of
from hearth.storage.relations import (
    ANNOTATION,
    REFERENCE,
    REPLACE,
    THREAD,
    Child,
    RelationsStore,
    Summary,
)
from hearth.storage.rooms import RoomInfo, RoomsStore
from hearth.storage.timeline import Pos, TimelineStore
from hearth.users.sessions import Requester

RECURSION_DEPTH = 3
DEFAULT_LIMIT = 5
MAX_LIMIT = 100
# Rows read beyond `limit` while skipping events the user may not see.
_SCAN_BUDGET = 1000
# Older thread events tried when the newest one is hidden from the user.
_LATEST_FALLBACK = 20


def _room_of(stored: StoredEvent) -> RoomInfo:
    event = stored.event
    return RoomInfo(stored.room_nid, event.room_id, event.room_version)


def _earliest(a: Pos | None, b: Pos | None) -> Pos | None:
    if a is None or b is None:
        return a if b is None else b
    return min(a, b)


class RelationRules:
    """Checks on client-sent events that relate to another (threading and annotation rules).

    - a thread may not start from an event that is itself a child of a
      relationship: 400 M_UNKNOWN (the spec names no better code);
    - a user may not annotate an event twice with the same key and event type
      (unless the first was redacted): 400 M_DUPLICATE_ANNOTATION.

    Both are checked before the room's lock is taken, so two concurrent
    identical annotations can still both land; the spec asks clients to
    deduplicate anyway. Only senders joined to the room are checked: anyone
    else is refused by the auth rules, and learns nothing about the room here.
    """

    def __init__(self, *, db: Database, rooms: RoomsStore, relations: RelationsStore) -> None:
        self._db = db
        self._rooms = rooms
        self._relations = relations

    async def __call__(self, room_id: str, sender: str, event_type: str, content: Mapping[str, Any]) -> None:
        rel = content.get("m.relates_to")
        if not isinstance(rel, dict):
            return
        target, rel_type = rel.get("event_id"), rel.get("rel_type")
        if not isinstance(target, str) or rel_type not in (THREAD, ANNOTATION):
            return
        room = await self._rooms.get(room_id)
        if room is None:
            return
        membership = await self._rooms.membership(room.room_nid, sender)
        if membership is None or membership[0] != "join":
            return
        if rel_type == THREAD:
            async with self._db.read() as conn:
                nested = await self._relations.has_relation(conn, target, room.room_nid)
            if nested:
                raise MatrixError(400, "M_UNKNOWN", "Cannot start a thread from an event with a relation")
        elif rel_type == ANNOTATION and isinstance(rel.get("key"), str):
            async with self._db.read() as conn:
                duplicate = await self._relations.has_annotation(conn, target, sender, event_type, rel["key"])
            if duplicate:
                raise MatrixError(400, "M_DUPLICATE_ANNOTATION", "You already sent this annotation")


class RelationsService:
    def __init__(
        self,
        *,
        db: Database,
        rooms: RoomsStore,
        events: EventsStore,
        relations: RelationsStore,
        timeline: TimelineStore,
        visibility: HistoryVisibility,
        serializer: EventSerializer,
        account_data: AccountDataStore,
        clock: Clock,
    ) -> None:
        self._db = db
        self._rooms = rooms
        self._events = events
        self._relations = relations
        self._timeline = timeline
        self._visibility = visibility
        self._serializer = serializer
        self._account_data = account_data
        self._clock = clock

    async def _ignored(self, user_id: str) -> frozenset[str]:
        content = await self._account_data.get(user_id, "", "m.ignored_user_list")
        ignored = content.get("ignored_users") if content else None
        return frozenset(ignored) if isinstance(ignored, dict) else frozenset()

    async def _event_in_room(self, conn: DbConnection, room: RoomInfo, event_id: str) -> StoredEvent | None:
        stored = (await self._events.by_ids(conn, [event_id])).get(event_id)
        if stored is None or stored.room_nid != room.room_nid or stored.stream_ordering is None:
            return None
        return stored if stored.rejected_reason is None else None

    async def _resolve(self, conn: DbConnection, room: RoomInfo, raw: str, name: str) -> Pos:
        token = Token.parse(raw, name)
        if token.pos is not None:
            return token.pos
        assert token.stream is not None
        row = await self._timeline.at_stream(conn, room.room_nid, token.stream)
        return row.pos if row is not None else (0, 0)

    # --- GET /relations ----------------------------------------------------------

    async def relations(
        self,
        requester: Requester,
        room_id: str,
        event_id: str,
        *,
        rel_type: str | None = None,
        event_type: str | None = None,
        from_token: str | None = None,
        to_token: str | None = None,
        limit: int = DEFAULT_LIMIT,
        backwards: bool = True,
        recurse: bool | None = None,
    ) -> dict[str, Any]:
        """The children of `event_id` that the user may see; 404 if they may not see the parent."""
        room = await self._rooms.get(room_id)
        if room is None:
            raise not_found("Event not found")
        async with self._db.read() as conn:
            viewer = await self._visibility.viewer(conn, room, requester.user_id)
            parent = await self._event_in_room(conn, room, event_id)
            if parent is None or not await viewer.allows(conn, parent):
                raise not_found("Event not found")
            from_pos = await self._resolve(conn, room, from_token, "from") if from_token else None
            to_pos = await self._resolve(conn, room, to_token, "to") if to_token else None
            bound = await viewer.timeline_bound(conn)
            if backwards:
                upto, after = _earliest(from_pos, bound), to_pos
            else:
                upto, after = _earliest(to_pos, bound), from_pos
            depth = RECURSION_DEPTH if recurse else 1
            taken: list[StoredEvent] = []
            boundary: Pos | None = None
            more = False
            scanned, batch = 0, limit + 1
            while limit > 0:
                rows = await self._relations.children(
                    conn, room.room_nid, event_id, rel_type=rel_type, event_type=event_type,
                    after=after, upto=upto, backwards=backwards, limit=batch, depth=depth,
                )
                loaded = await self._events.by_nids(conn, [r.event_nid for r in rows])
                visible = {s.event_nid for s in await viewer.filter(conn, list(loaded.values()))}
                full = False
                for i, row in enumerate(rows):
                    boundary = before(row.pos) if backwards else row.pos
                    if row.event_nid in visible:
                        taken.append(loaded[row.event_nid])
                        if len(taken) == limit:
                            more = i + 1 < len(rows) or len(rows) == batch
                            full = True
                            break
                scanned += len(rows)
                if full or len(rows) < batch:
                    break
                if scanned >= _SCAN_BUDGET:
                    more = True
                    break
                if backwards:
                    upto = boundary
                else:
                    after = boundary
                batch = min(max(batch * 2, 50), 500)
            response: dict[str, Any] = {
                "chunk": await self._serializer.serialize(
                    conn, taken, user_id=requester.user_id, device_id=requester.device_id, viewer=viewer
                ),
            }
        if more and boundary is not None:
            response["next_batch"] = topo_token(boundary)
        if from_token:
            response["prev_batch"] = from_token
        if recurse is not None:
            response["recursion_depth"] = depth
        return response

    # --- GET /threads ------------------------------------------------------------

    async def threads(
        self,
        requester: Requester,
        room_id: str,
        *,
        participated: bool = False,
        from_token: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> dict[str, Any]:
        """The room's thread roots the user may see, latest activity first."""
        before_stream: int | None = None
        if from_token is not None:
            try:
                before_stream = int(from_token)
            except ValueError:
                raise invalid_param("Unknown pagination token") from None
        room = await self._rooms.get(room_id)
        if room is None:
            raise forbidden(f"You are not allowed to view room {room_id}")
        user_id = requester.user_id
        ignored = await self._ignored(user_id)
        async with self._db.read() as conn:
            viewer = await self._visibility.viewer(conn, room, user_id)
            await viewer.timeline_bound(conn)  # M_FORBIDDEN for users who may not read the room
            taken: list[StoredEvent] = []
            last: int | None = None
            more = False
            scanned, batch = 0, limit + 1
            while limit > 0:
                rows = await self._relations.threads(
                    conn, room.room_nid, before_stream=before_stream, limit=batch,
                    participant=user_id if participated else None,
                )
                roots = await self._events.by_ids(conn, [root for root, _ in rows])
                candidates = [
                    s for s in roots.values() if s.room_nid == room.room_nid and not s.event.is_state()
                ]
                visible = {s.event_id for s in await viewer.filter(conn, candidates)}
                full = False
                for i, (root_id, latest) in enumerate(rows):
                    last = latest
                    if root_id in visible:
                        taken.append(roots[root_id])
                        if len(taken) == limit:
                            more = i + 1 < len(rows) or len(rows) == batch
                            full = True
                            break
                scanned += len(rows)
                if full or len(rows) < batch:
                    break
                if scanned >= _SCAN_BUDGET:
                    more = True
                    break
                before_stream = last
                batch = min(max(batch * 2, 50), 500)
            chunk = await self._serializer.serialize(
                conn, taken, user_id=user_id, device_id=requester.device_id, viewer=viewer
            )
        for stored, served in zip(taken, chunk, strict=True):
            if stored.event.sender in ignored and not stored.redacted_by:
                # As a client aggregating locally would see it: the root, redacted.
                served["content"] = redact(stored.event.pdu, stored.event.room_version).get("content", {})
        response: dict[str, Any] = {"chunk": chunk}
        if more and last is not None:
            response["next_batch"] = str(last)
        return response

    # --- bundled aggregations ----------------------------------------------------

    async def unsigned(
        self, conn: DbConnection, events: Sequence[StoredEvent], user_id: str | None
    ) -> Mapping[str, Mapping[str, Any]]:
        """The serializer hook: {event_id: {"m.relations": bundle}}."""
        if user_id is None:
            return {}
        bundles = await self.bundled(conn, events, user_id)
        return {event_id: {"m.relations": bundle} for event_id, bundle in bundles.items()}

    async def bundle(self, event_ids: Sequence[str], user_id: str) -> dict[str, dict[str, Any]]:
        """{event_id: m.relations content} for those of the events that have aggregations."""
        async with self._db.read() as conn:
            found = await self._events.by_ids(conn, event_ids)
            return await self.bundled(conn, [found[e] for e in event_ids if e in found], user_id)

    async def bundled(
        self, conn: DbConnection, events: Sequence[StoredEvent], user_id: str
    ) -> dict[str, dict[str, Any]]:
        """`bundle` for events already loaded, on the caller's connection."""
        parents = {
            s.event_id: s for s in events if s.stream_ordering is not None and not s.event.is_state()
        }
        if not parents:
            return {}
        ids = list(parents)
        summaries = await self._relations.summaries(conn, ids)
        if not summaries:
            return {}
        ignored = await self._ignored(user_id)
        if ignored:
            summaries = await self._relations.summaries(conn, ids, ignored=ignored)
        summaries = [x for x in summaries if parents[x.parent_id].room_nid == x.room_nid]
        viewers: dict[int, Viewer] = {}
        out: dict[str, dict[str, Any]] = {}
        now = self._clock.time_ms()

        edits = [parents[x.parent_id] for x in summaries if x.rel_type == REPLACE]
        for parent_id, edit in (await self._edits(conn, edits, user_id, ignored, viewers)).items():
            out.setdefault(parent_id, {})[REPLACE] = client_event(edit.event, now_ms=now)

        refs = [x.parent_id for x in summaries if x.rel_type == REFERENCE]
        if refs:
            children = await self._relations.children_of(conn, refs, REFERENCE, ignored=ignored)
            shown, _ = await self._visible_children(conn, children, parents, user_id, viewers)
            chunks: dict[str, list[dict[str, str]]] = {}
            for child in reversed(shown):
                chunks.setdefault(child.parent_id, []).append({"event_id": child.event_id})
            for parent_id, chunk in chunks.items():
                out.setdefault(parent_id, {})[REFERENCE] = {"chunk": chunk}

        threads = [x for x in summaries if x.rel_type == THREAD]
        if threads:
            for parent_id, aggregate in (
                await self._threads(conn, threads, parents, user_id, ignored, viewers, now)
            ).items():
                out.setdefault(parent_id, {})[THREAD] = aggregate
        return out

    async def _viewer(self, conn: DbConnection, stored: StoredEvent, user_id: str,
                      viewers: dict[int, Viewer]) -> Viewer:
        viewer = viewers.get(stored.room_nid)
        if viewer is None:
            viewer = await self._visibility.viewer(conn, _room_of(stored), user_id)
            viewers[stored.room_nid] = viewer
        return viewer

    async def _filter(self, conn: DbConnection, events: Sequence[StoredEvent], user_id: str,
                      viewers: dict[int, Viewer]) -> list[StoredEvent]:
        """The events the user may see (any rooms), in the given order."""
        by_room: dict[int, list[StoredEvent]] = {}
        for stored in events:
            by_room.setdefault(stored.room_nid, []).append(stored)
        visible: set[int] = set()
        for room_events in by_room.values():
            viewer = await self._viewer(conn, room_events[0], user_id, viewers)
            visible.update(s.event_nid for s in await viewer.filter(conn, room_events))
        return [s for s in events if s.event_nid in visible]

    async def _visible_children(
        self, conn: DbConnection, children: Sequence[Child], parents: Mapping[str, StoredEvent],
        user_id: str, viewers: dict[int, Viewer],
    ) -> tuple[list[Child], dict[int, StoredEvent]]:
        """Children in their parent's room that the user may see, in the given order, and the events."""
        same_room = [
            c for c in children if c.parent_id in parents and c.room_nid == parents[c.parent_id].room_nid
        ]
        loaded = await self._events.by_nids(conn, [c.event_nid for c in same_room])
        visible = {s.event_nid for s in await self._filter(conn, list(loaded.values()), user_id, viewers)}
        return [c for c in same_room if c.event_nid in visible], loaded

    async def _edits(
        self, conn: DbConnection, originals: Sequence[StoredEvent], user_id: str,
        ignored: frozenset[str], viewers: dict[int, Viewer],
    ) -> dict[str, StoredEvent]:
        """The most recent valid, visible edit of each original that may be edited."""
        editable = {
            s.event_id: s for s in originals
            if not s.redacted_by and not s.event.is_state() and not _is_edit(s)
        }
        if not editable:
            return {}
        children = await self._relations.children_of(conn, list(editable), REPLACE, ignored=ignored)
        candidates = [
            c for c in children
            if c.sender == editable[c.parent_id].event.sender and c.type == editable[c.parent_id].event.type
        ]
        shown, loaded = await self._visible_children(conn, candidates, editable, user_id, viewers)
        best: dict[str, tuple[tuple[int, str], StoredEvent]] = {}
        for child in shown:
            edit = loaded.get(child.event_nid)
            if edit is None or edit.event.is_state():
                continue
            if not isinstance(edit.event.content.get("m.new_content"), dict):
                continue
            key = (child.origin_server_ts, child.event_id)
            current = best.get(child.parent_id)
            if current is None or key > current[0]:
                best[child.parent_id] = (key, edit)
        return {parent_id: edit for parent_id, (_, edit) in best.items()}

    async def _threads(
        self, conn: DbConnection, summaries: Sequence[Summary], parents: Mapping[str, StoredEvent],
        user_id: str, ignored: frozenset[str], viewers: dict[int, Viewer], now: int,
    ) -> dict[str, dict[str, Any]]:
        latest_nids = await self._relations.nids_at_streams(conn, [x.latest_stream for x in summaries])
        loaded = await self._events.by_nids(conn, latest_nids)
        visible = await self._filter(conn, list(loaded.values()), user_id, viewers)
        latest: dict[str, StoredEvent] = {}
        for stored in visible:
            relation = relation_of(stored.event)
            if relation is not None:
                latest[relation[0]] = stored
        for summary in summaries:
            if summary.parent_id not in latest:
                fallback = await self._latest_visible(conn, summary, parents, user_id, ignored, viewers)
                if fallback is not None:
                    latest[summary.parent_id] = fallback
        roots = [x.parent_id for x in summaries if x.parent_id in latest]
        if not roots:
            return {}
        joined = await self._relations.participated(conn, roots, user_id)
        edits = await self._edits(conn, [latest[r] for r in roots], user_id, ignored, viewers)
        counts = {x.parent_id: x.count for x in summaries}
        out: dict[str, dict[str, Any]] = {}
        for root_id in roots:
            event = latest[root_id]
            served = client_event(event.event, now_ms=now)
            edit = edits.get(event.event_id)
            if edit is not None:
                served["unsigned"]["m.relations"] = {REPLACE: client_event(edit.event, now_ms=now)}
            out[root_id] = {
                "latest_event": served,
                "count": counts[root_id],
                "current_user_participated": root_id in joined or parents[root_id].event.sender == user_id,
            }
        return out

    async def _latest_visible(
        self, conn: DbConnection, summary: Summary, parents: Mapping[str, StoredEvent], user_id: str,
        ignored: frozenset[str], viewers: dict[int, Viewer],
    ) -> StoredEvent | None:
        """The newest thread event the user may see, when the newest of all is hidden from them."""
        children = await self._relations.children_of(
            conn, [summary.parent_id], THREAD, ignored=ignored, limit=_LATEST_FALLBACK
        )
        shown, loaded = await self._visible_children(conn, children, parents, user_id, viewers)
        return loaded.get(shown[0].event_nid) if shown else None


def _is_edit(stored: StoredEvent) -> bool:
    relation = relation_of(stored.event)
    return relation is not None and relation[1] == REPLACE
