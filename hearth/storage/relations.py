"""Relations between events: child events, the aggregates bundled with a parent, threads.

`event_relations` (filled by `EventsStore.insert`) maps each child event to
its parent (`relates_to_id`) and `rel_type`; the index on
(relates_to_id, rel_type) makes every query here start from parent ids.
Children count only when they are in the timeline, not rejected, not
redacted (redaction strips `m.relates_to`) and in the parent's room; callers
pass the parent's room and the queries check it.

`threads` keeps, per thread root, the latest event in the thread, written by
`note_thread_event` in the transaction that stores the event, so the thread
list of a room is one range scan in activity order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, func, insert, literal, select, tuple_, update

from hearth.storage.db import DbConnection
from hearth.storage.prepared import prepared
from hearth.storage.tables import event_relations, events, threads
from hearth.storage.timeline import PageRow, Pos

THREAD = "m.thread"
REPLACE = "m.replace"
REFERENCE = "m.reference"
ANNOTATION = "m.annotation"
AGGREGATED = (THREAD, REPLACE, REFERENCE)

_CHUNK = 500

_VALID_CHILD = and_(
    events.c.stream_ordering.is_not(None),
    events.c.rejected_reason.is_(None),
    events.c.redacted_by.is_(None),
)
_CHILD_JOIN = event_relations.join(events, events.c.event_nid == event_relations.c.event_nid)

# Bundled aggregations are summarised for every page of /messages and /sync: built once.
_SUMMARIES = prepared(
    select(
        event_relations.c.relates_to_id,
        event_relations.c.rel_type,
        events.c.room_nid,
        func.count(),
        func.max(events.c.stream_ordering),
    )
    .select_from(_CHILD_JOIN)
    .where(
        event_relations.c.relates_to_id.in_(bindparam("parent_ids", expanding=True)),
        event_relations.c.rel_type.in_(AGGREGATED),
        _VALID_CHILD,
    )
    .group_by(event_relations.c.relates_to_id, event_relations.c.rel_type, events.c.room_nid)
)
_SUMMARIES_IGNORING = _SUMMARIES.where(events.c.sender.not_in(bindparam("ignored", expanding=True)))

async def note_thread_event(
    conn: DbConnection, room_nid: int, root_event_id: str, event_nid: int, stream: int
) -> None:
    """Make `event_nid` the thread's latest event unless a later one is already recorded."""
    result = await conn.execute(
        update(threads)
        .where(
            threads.c.room_nid == room_nid,
            threads.c.root_event_id == root_event_id,
            threads.c.latest_stream < stream,
        )
        .values(latest_event_nid=event_nid, latest_stream=stream)
    )
    if result.rowcount:
        return
    known = await conn.execute(
        select(threads.c.latest_stream).where(
            threads.c.room_nid == room_nid, threads.c.root_event_id == root_event_id
        )
    )
    if known.first() is None:
        await conn.execute(
            insert(threads).values(
                room_nid=room_nid, root_event_id=root_event_id, latest_event_nid=event_nid,
                latest_stream=stream,
            )
        )


def _not_from(senders: Collection[str]) -> list[ColumnElement[bool]]:
    return [events.c.sender.not_in(sorted(senders))] if senders else []


@dataclass(frozen=True, slots=True)
class Summary:
    """The aggregate of one rel_type's children of one parent (in one room)."""

    parent_id: str
    rel_type: str
    room_nid: int
    count: int
    latest_stream: int


@dataclass(frozen=True, slots=True)
class Child:
    parent_id: str
    event_nid: int
    event_id: str
    room_nid: int
    sender: str
    type: str
    origin_server_ts: int
    stream_ordering: int


class RelationsStore:
    async def children(
        self,
        conn: DbConnection,
        room_nid: int,
        parent_id: str,
        *,
        rel_type: str | None,
        event_type: str | None,
        after: Pos | None,
        upto: Pos | None,
        backwards: bool,
        limit: int,
        depth: int = 1,
    ) -> list[PageRow]:
        """Children with `after` < position <= `upto`, nearest `upto` first when `backwards`.

        With `depth` > 1 the children of children are included too, down to
        that many levels; the rel_type and type filters apply to the events
        returned, not to the links followed.
        """
        if depth <= 1:
            source = _CHILD_JOIN
            condition = event_relations.c.relates_to_id == parent_id
        else:
            tree = self._tree(room_nid, parent_id, depth)
            source = tree.join(events, events.c.event_nid == tree.c.event_nid).join(
                event_relations, event_relations.c.event_nid == events.c.event_nid
            )
            condition = literal(True)
        pos = tuple_(events.c.depth, events.c.stream_ordering)
        stmt = (
            select(events.c.event_nid, events.c.depth, events.c.stream_ordering)
            .distinct()
            .select_from(source)
            .where(condition, events.c.room_nid == room_nid, _VALID_CHILD)
        )
        if rel_type is not None:
            stmt = stmt.where(event_relations.c.rel_type == rel_type)
        if event_type is not None:
            stmt = stmt.where(events.c.type == event_type)
        if after is not None:
            stmt = stmt.where(pos > tuple_(literal(after[0]), literal(after[1])))
        if upto is not None:
            stmt = stmt.where(pos <= tuple_(literal(upto[0]), literal(upto[1])))
        if backwards:
            stmt = stmt.order_by(events.c.depth.desc(), events.c.stream_ordering.desc())
        else:
            stmt = stmt.order_by(events.c.depth, events.c.stream_ordering)
        rows: list[Any] = list(await conn.execute(stmt.limit(limit)))
        return [PageRow(r[0], (r[1], r[2])) for r in rows]

    @staticmethod
    def _tree(room_nid: int, parent_id: str, depth: int) -> Any:
        """A CTE of the event nids related to `parent_id` through at most `depth` links."""
        first = (
            select(events.c.event_nid, events.c.event_id, literal(1).label("lvl"))
            .select_from(_CHILD_JOIN)
            .where(event_relations.c.relates_to_id == parent_id, events.c.room_nid == room_nid, _VALID_CHILD)
        )
        tree = first.cte("relation_tree", recursive=True)
        child = events.alias("child")
        link = event_relations.alias("link")
        return tree.union_all(
            select(child.c.event_nid, child.c.event_id, tree.c.lvl + 1)
            .select_from(
                tree.join(link, link.c.relates_to_id == tree.c.event_id).join(
                    child, child.c.event_nid == link.c.event_nid
                )
            )
            .where(
                tree.c.lvl < depth,
                child.c.room_nid == room_nid,
                child.c.stream_ordering.is_not(None),
                child.c.rejected_reason.is_(None),
                child.c.redacted_by.is_(None),
            )
        )

    async def summaries(
        self, conn: DbConnection, parent_ids: Sequence[str], *, ignored: Collection[str] = ()
    ) -> list[Summary]:
        """Count and latest stream position of the aggregated children of each parent."""
        out: list[Summary] = []
        stmt = _SUMMARIES_IGNORING if ignored else _SUMMARIES
        params: dict[str, Any] = {"ignored": sorted(ignored)} if ignored else {}
        for i in range(0, len(parent_ids), _CHUNK):
            params["parent_ids"] = list(parent_ids[i : i + _CHUNK])
            rows: list[Any] = list(await conn.execute(stmt, params))
            out.extend(Summary(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in rows)
        return out

    async def nids_at_streams(self, conn: DbConnection, streams: Collection[int]) -> list[int]:
        """The events at these stream positions (positions are unique)."""
        wanted = sorted(streams)
        out: list[int] = []
        for i in range(0, len(wanted), _CHUNK):
            rows = await conn.execute(
                select(events.c.event_nid).where(events.c.stream_ordering.in_(wanted[i : i + _CHUNK]))
            )
            out.extend(r[0] for r in rows)
        return out

    async def participated(self, conn: DbConnection, root_ids: Sequence[str], user_id: str) -> set[str]:
        """The thread roots among `root_ids` that `user_id` has sent a thread event to."""
        found: set[str] = set()
        for i in range(0, len(root_ids), _CHUNK):
            rows = await conn.execute(
                select(event_relations.c.relates_to_id)
                .distinct()
                .select_from(_CHILD_JOIN)
                .where(
                    event_relations.c.relates_to_id.in_(root_ids[i : i + _CHUNK]),
                    event_relations.c.rel_type == THREAD,
                    events.c.sender == user_id,
                    _VALID_CHILD,
                )
            )
            found.update(r[0] for r in rows)
        return found

    async def children_of(
        self,
        conn: DbConnection,
        parent_ids: Sequence[str],
        rel_type: str,
        *,
        ignored: Collection[str] = (),
        before_stream: int | None = None,
        limit: int | None = None,
    ) -> list[Child]:
        """The valid children of one rel_type of each parent, newest first."""
        out: list[Child] = []
        for i in range(0, len(parent_ids), _CHUNK):
            stmt = (
                select(
                    event_relations.c.relates_to_id, events.c.event_nid, events.c.event_id, events.c.room_nid,
                    events.c.sender, events.c.type, events.c.origin_server_ts, events.c.stream_ordering,
                )
                .select_from(_CHILD_JOIN)
                .where(
                    event_relations.c.relates_to_id.in_(parent_ids[i : i + _CHUNK]),
                    event_relations.c.rel_type == rel_type,
                    _VALID_CHILD,
                    *_not_from(ignored),
                )
                .order_by(events.c.stream_ordering.desc())
            )
            if before_stream is not None:
                stmt = stmt.where(events.c.stream_ordering < before_stream)
            if limit is not None:
                stmt = stmt.limit(limit)
            rows: list[Any] = list(await conn.execute(stmt))
            out.extend(Child(*row) for row in rows)
        return out

    async def has_relation(self, conn: DbConnection, event_id: str, room_nid: int) -> bool:
        """Whether `event_id`, in the room, is itself a child event (has a valid m.relates_to)."""
        row = await conn.execute(
            select(
                exists().where(
                    event_relations.c.event_nid == events.c.event_nid,
                    events.c.event_id == event_id,
                    events.c.room_nid == room_nid,
                )
            )
        )
        return bool(row.scalar())

    async def has_annotation(
        self, conn: DbConnection, target_id: str, sender: str, event_type: str, key: str
    ) -> bool:
        """Whether `sender` already annotated `target_id` with `key` in an event of `event_type`."""
        row = await conn.execute(
            select(
                exists().where(
                    event_relations.c.relates_to_id == target_id,
                    event_relations.c.rel_type == ANNOTATION,
                    event_relations.c.aggregation_key == key,
                    events.c.event_nid == event_relations.c.event_nid,
                    events.c.sender == sender,
                    events.c.type == event_type,
                    _VALID_CHILD,
                )
            )
        )
        return bool(row.scalar())

    async def threads(
        self,
        conn: DbConnection,
        room_nid: int,
        *,
        before_stream: int | None,
        limit: int,
        participant: str | None = None,
    ) -> list[tuple[str, int]]:
        """(root event id, latest stream position) of the room's threads, latest activity first.

        With `participant`, only threads that user started or sent a thread event to.
        """
        stmt = select(threads.c.root_event_id, threads.c.latest_stream).where(threads.c.room_nid == room_nid)
        if before_stream is not None:
            stmt = stmt.where(threads.c.latest_stream < before_stream)
        if participant is not None:
            root = events.alias("root")
            started = exists().where(root.c.event_id == threads.c.root_event_id, root.c.sender == participant)
            replied = exists().where(
                event_relations.c.relates_to_id == threads.c.root_event_id,
                event_relations.c.rel_type == THREAD,
                events.c.event_nid == event_relations.c.event_nid,
                events.c.sender == participant,
                events.c.room_nid == room_nid,
            )
            stmt = stmt.where(started | replied)
        rows: list[Any] = list(await conn.execute(stmt.order_by(threads.c.latest_stream.desc()).limit(limit)))
        return [(r[0], int(r[1])) for r in rows]
