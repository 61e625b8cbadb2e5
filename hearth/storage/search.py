"""Full-text search over event text, and the room facts the user directory needs.

`index_event` runs inside `EventsStore.insert`, in the transaction that stores
the event, for every event that joins a timeline:

- the searchable text of m.room.message (`content.body`), m.room.name
  (`content.name`) and m.room.topic (`content.topic`, plus the text/plain
  body of `content["m.topic"]` when it differs) goes into `event_search`;
  the engine's full-text index over it is kept by the database (see
  migration 0005 and `dialect.full_text_match`);
- a join-rules or history-visibility event records whether the room's members
  are visible to everyone in the user directory (`room_publicity`).

`unindex_event` drops a redacted event's text, so redacted events never match.

`SearchStore.search` finds matching events among those the user may be
shown at all: rooms where they are joined, or which they left or were banned
from, and then only events up to their departure; forgotten rooms are left
out. The per-event history visibility rules are applied afterwards by the
service (`hearth.rooms.search`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, desc, func, insert, or_, select

from hearth.core.events import Event
from hearth.storage import dialect
from hearth.storage.db import DbConnection
from hearth.storage.prepared import prepared
from hearth.storage.tables import event_search, events, room_members, room_publicity, rooms
from hearth.storage.timeline import EventMatch

SEARCH_KEYS = ("content.body", "content.name", "content.topic")
_KEY_BY_TYPE = {
    "m.room.message": "content.body", "m.room.name": "content.name", "m.room.topic": "content.topic",
}
# Longer text is cut: nobody searches for the middle of a novel pasted into a room.
_MAX_INDEXED_CHARS = 64 * 1024

_INSERT_TEXT = prepared(insert(event_search))


def searchable_text(event: Event) -> tuple[str, str] | None:
    """(search key, text) for an event whose text is searchable."""
    key = _KEY_BY_TYPE.get(event.type)
    if key is None:
        return None
    content = event.content
    value = content.get(key.removeprefix("content."))
    text = value if isinstance(value, str) else ""
    if event.type == "m.room.topic":
        plain = _plain_topic(content.get("m.topic"))
        if plain and plain != text:
            text = f"{text}\n{plain}" if text else plain
    if not text.strip():
        return None
    return key, text[:_MAX_INDEXED_CHARS]


def _plain_topic(block: Any) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("m.text"), list):
        return ""
    for item in block["m.text"]:
        if isinstance(item, dict) and item.get("mimetype", "text/plain") == "text/plain":
            body = item.get("body")
            if isinstance(body, str):
                return body
    return ""


def indexed_text(event: Event) -> tuple[str, str] | None:
    """The (key, text) row `event_search` keeps for a timeline event, if any.

    Messages, and the room's own name and topic (state key "").
    """
    if event.type != "m.room.message" and event.state_key != "":
        return None
    return searchable_text(event)


async def index_event(conn: DbConnection, event: Event, event_nid: int, room_nid: int, stream: int) -> None:
    """Record what search and the user directory need from a newly stored timeline event."""
    if event.type in _KEY_BY_TYPE:
        found = indexed_text(event)
        if found is not None:
            await conn.execute(
                _INSERT_TEXT,
                {"event_nid": event_nid, "room_nid": room_nid, "key": found[0], "value": found[1],
                 "stream_ordering": stream},
            )
    elif event.type == "m.room.join_rules" and event.state_key == "":
        await _set_publicity(conn, room_nid, "public_join", event.content.get("join_rule") == "public")
    elif event.type == "m.room.history_visibility" and event.state_key == "":
        readable = event.content.get("history_visibility") == "world_readable"
        await _set_publicity(conn, room_nid, "world_readable", readable)


async def _set_publicity(conn: DbConnection, room_nid: int, column: str, value: bool) -> None:
    row = {"room_nid": room_nid, "public_join": False, "world_readable": False, column: value}
    await conn.execute(dialect.upsert(conn, room_publicity, row, ["room_nid"], [column]))


async def unindex_event(conn: DbConnection, event_id: str) -> None:
    """Forget a redacted event's text."""
    nid = select(events.c.event_nid).where(events.c.event_id == event_id).scalar_subquery()
    await conn.execute(delete(event_search).where(event_search.c.event_nid == nid))


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What to look for, and where (the parts the database can check)."""

    user_id: str
    words: Sequence[str]
    keys: Collection[str] = SEARCH_KEYS
    room_ids: Collection[str] | None = None
    not_room_ids: Collection[str] = ()
    match: EventMatch | None = None
    not_senders: Collection[str] = ()
    # Restrict to one group of a grouped search: ("room_id" | "sender", value).
    group: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    event_nid: int
    room_nid: int
    stream_ordering: int
    rank: float
    value: str


class SearchStore:
    def _base(self, conn: DbConnection, query: SearchQuery, *columns: Any) -> tuple[Select[Any], Any]:
        """SELECT `columns` of the matches the user may be shown, and the rank expression."""
        fts = dialect.full_text_match(conn, query.words)
        member = room_members
        visible = and_(
            member.c.room_nid == event_search.c.room_nid,
            member.c.user_id == query.user_id,
            member.c.forgotten.is_(False),
            or_(
                member.c.membership == "join",
                and_(
                    member.c.membership.in_(("leave", "ban")),
                    event_search.c.stream_ordering <= member.c.stream_ordering,
                ),
            ),
        )
        source = fts.from_.join(member, visible).join(events, events.c.event_nid == event_search.c.event_nid)
        conditions: list[ColumnElement[bool]] = [
            fts.where,
            events.c.redacted_by.is_(None),
            event_search.c.key.in_(sorted(query.keys)),
        ]
        needs_rooms = query.room_ids is not None or bool(query.not_room_ids) or (
            query.group is not None and query.group[0] == "room_id"
        )
        if needs_rooms:
            source = source.join(rooms, rooms.c.room_nid == event_search.c.room_nid)
            if query.room_ids is not None:
                conditions.append(rooms.c.room_id.in_(sorted(query.room_ids)))
            if query.not_room_ids:
                conditions.append(rooms.c.room_id.not_in(sorted(query.not_room_ids)))
        if query.match is not None and (clause := query.match.clause()) is not None:
            conditions.append(clause)
        if query.not_senders:
            conditions.append(events.c.sender.not_in(sorted(query.not_senders)))
        if query.group is not None:
            key, value = query.group
            conditions.append(rooms.c.room_id == value if key == "room_id" else events.c.sender == value)
        return select(*columns).select_from(source).where(*conditions), fts.rank

    async def search(
        self,
        conn: DbConnection,
        query: SearchQuery,
        *,
        by_rank: bool,
        before_stream: int | None,
        offset: int,
        limit: int,
    ) -> list[SearchHit]:
        """Matches, best first (`by_rank`) or newest first, after a page position.

        Newest-first pages continue below `before_stream`; ranked pages skip
        `offset` rows (ranks are not a stable key between requests).
        """
        if not query.words:
            return []
        stmt, rank = self._base(
            conn, query, event_search.c.event_nid, event_search.c.room_nid,
            event_search.c.stream_ordering, event_search.c.value,
        )
        stmt = stmt.add_columns(rank)
        if by_rank:
            stmt = stmt.order_by(desc(rank), event_search.c.stream_ordering.desc()).offset(offset)
        else:
            if before_stream is not None:
                stmt = stmt.where(event_search.c.stream_ordering < before_stream)
            stmt = stmt.order_by(event_search.c.stream_ordering.desc())
        rows: list[Any] = list(await conn.execute(stmt.limit(limit)))
        return [SearchHit(r[0], r[1], r[2], float(r[4] or 0.0), r[3]) for r in rows]

    async def count(self, conn: DbConnection, query: SearchQuery) -> int:
        """How many events match (before per-event visibility, hence approximate)."""
        if not query.words:
            return 0
        stmt, _ = self._base(conn, query, event_search.c.event_nid)
        inner = stmt.subquery()
        return int((await conn.execute(select(func.count()).select_from(inner))).scalar_one())
