"""Reading a room's timeline: pagination, state at points in the DAG, lookups by time.

Pagination is keyset pagination on the index `events_room_topo` (room_nid,
depth, stream_ordering): a page is one range scan that starts at a position
and stops after `limit` rows, so page 100 costs what page 1 costs. A position
`Pos` is the pair (depth, stream_ordering); integers order the events totally
(depth first, the insert order among events of one depth), and a boundary
between two events is the position of the earlier one.

Outliers (no stream position) and rejected events are never part of a
timeline.

`entries_at` reads a few state keys from many snapshots at once with one
recursive query over the snapshot delta chains, instead of loading every
snapshot in full: history visibility needs two keys per snapshot, lazy-loaded
members a handful.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, false, literal, not_, or_, select, tuple_

from hearth.core.events import Event
from hearth.storage.db import DbConnection
from hearth.storage.prepared import prepared
from hearth.storage.tables import (
    account_data,
    event_txn_ids,
    events,
    room_members,
    rooms,
    state_snapshot_entries,
    state_snapshots,
)

Pos = tuple[int, int]  # (depth, stream_ordering)

_CHUNK = 500


def _like_pattern(glob: str) -> str:
    """A filter type with `*` wildcards as a LIKE pattern (escape character `\\`)."""
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _glob_regex(globs: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(".*".join(re.escape(p) for p in g.split("*")) for g in globs), re.DOTALL)


class EventMatch:
    """The parts of a RoomEventFilter that the database can check (types and senders).

    `types`/`not_types` may use `*` for any run of characters; an exclusion
    wins over an inclusion, and an empty inclusion list matches nothing.
    """

    __slots__ = ("_not_types_re", "_types_re", "not_senders", "not_types", "senders", "types")

    def __init__(
        self,
        *,
        types: Sequence[str] | None = None,
        not_types: Sequence[str] = (),
        senders: Sequence[str] | None = None,
        not_senders: Sequence[str] = (),
    ) -> None:
        self.types = tuple(types) if types is not None else None
        self.not_types = tuple(not_types)
        self.senders = frozenset(senders) if senders is not None else None
        self.not_senders = frozenset(not_senders)
        self._types_re = _glob_regex(self.types) if self.types else None
        self._not_types_re = _glob_regex(self.not_types) if self.not_types else None

    @property
    def is_everything(self) -> bool:
        return self.types is None and not self.not_types and self.senders is None and not self.not_senders

    def matches(self, event: Event) -> bool:
        """The same test as `clause`, on an event in memory (for state lists)."""
        if self.senders is not None and event.sender not in self.senders:
            return False
        if event.sender in self.not_senders:
            return False
        if self._not_types_re is not None and self._not_types_re.fullmatch(event.type):
            return False
        if self.types is None:
            return True
        return self._types_re is not None and self._types_re.fullmatch(event.type) is not None

    def clause(self) -> ColumnElement[bool] | None:
        parts: list[ColumnElement[bool]] = []
        if self.types is not None:
            parts.append(or_(false(), *(_type_test(t) for t in self.types)))
        if self.not_types:
            parts.append(not_(or_(*(_type_test(t) for t in self.not_types))))
        if self.senders is not None:
            parts.append(events.c.sender.in_(sorted(self.senders)) if self.senders else false())
        if self.not_senders:
            parts.append(events.c.sender.not_in(sorted(self.not_senders)))
        return and_(*parts) if parts else None


def _type_test(glob: str) -> ColumnElement[bool]:
    if "*" not in glob:
        return events.c.type == glob
    return events.c.type.like(_like_pattern(glob), escape="\\")


@dataclass(frozen=True, slots=True)
class PageRow:
    event_nid: int
    pos: Pos


_IN_TIMELINE = and_(events.c.stream_ordering.is_not(None), events.c.rejected_reason.is_(None))


_position = tuple_(events.c.depth, events.c.stream_ordering)
_AnySelect = Select[*tuple[Any, ...]]
_PAGE_STATEMENTS: dict[tuple[bool, bool, bool], _AnySelect] = {}


def _page_statement(has_after: bool, has_upto: bool, backwards: bool, *, cached: bool = True) -> _AnySelect:
    """The keyset page query, built once per shape with bound parameters.

    Reusing one statement object lets SQLAlchemy skip rebuilding and
    re-keying it on every page; that was most of a page's cost on SQLite.
    """
    key = (has_after, has_upto, backwards)
    hit = _PAGE_STATEMENTS.get(key) if cached else None
    if hit is not None:
        return hit
    stmt: _AnySelect = select(events.c.event_nid, events.c.depth, events.c.stream_ordering).where(
        events.c.room_nid == bindparam("room_nid"), _IN_TIMELINE
    )
    if has_after:
        stmt = stmt.where(_position > tuple_(bindparam("after_depth"), bindparam("after_stream")))
    if has_upto:
        stmt = stmt.where(_position <= tuple_(bindparam("upto_depth"), bindparam("upto_stream")))
    if backwards:
        stmt = stmt.order_by(events.c.depth.desc(), events.c.stream_ordering.desc())
    else:
        stmt = stmt.order_by(events.c.depth, events.c.stream_ordering)
    stmt = stmt.limit(bindparam("limit"))
    if cached:
        _PAGE_STATEMENTS[key] = stmt
    return stmt


_AT_STREAM = prepared(
    select(events.c.event_nid, events.c.depth, events.c.stream_ordering)
    .where(events.c.room_nid == bindparam("room_nid"), _IN_TIMELINE,
           events.c.stream_ordering <= bindparam("stream"))
    .order_by(events.c.stream_ordering.desc())
    .limit(1)
)

_STATE_AFTER_AT = prepared(
    select(events.c.state_after_nid)
    .where(events.c.room_nid == bindparam("room_nid"), _IN_TIMELINE,
           _position <= tuple_(bindparam("depth"), bindparam("stream")))
    .order_by(events.c.depth.desc(), events.c.stream_ordering.desc())
    .limit(1)
)

_MEMBER_EVENTS = prepared(
    select(events.c.event_nid)
    .where(events.c.room_nid == bindparam("room_nid"), events.c.type == "m.room.member",
           events.c.state_key == bindparam("user_id"), _IN_TIMELINE)
    .order_by(events.c.stream_ordering.desc())
)

_TXN_IDS = prepared(select(event_txn_ids.c.event_id, event_txn_ids.c.txn_id).where(
    event_txn_ids.c.event_id.in_(bindparam("event_ids", expanding=True)),
    event_txn_ids.c.user_id == bindparam("user_id"),
    event_txn_ids.c.device_id == bindparam("device_id"),
))

_MEMBERSHIP = prepared(select(room_members.c.membership, room_members.c.event_nid).where(
    room_members.c.room_nid == bindparam("room_nid"), room_members.c.user_id == bindparam("user_id")
))


def _entries_statement() -> _AnySelect:
    """Given keys of given snapshots: walk each delta chain, keep the entries for those keys."""
    base = select(
        state_snapshots.c.snapshot_nid.label("origin"),
        state_snapshots.c.snapshot_nid.label("snap"),
        state_snapshots.c.parent_snapshot_nid.label("parent"),
        literal(0).label("lvl"),
    ).where(state_snapshots.c.snapshot_nid.in_(bindparam("snapshots", expanding=True)))
    chain = base.cte("chain", recursive=True)
    parent = state_snapshots.alias("parent_snap")
    chain = chain.union_all(
        select(chain.c.origin, parent.c.snapshot_nid, parent.c.parent_snapshot_nid, chain.c.lvl + 1).where(
            parent.c.snapshot_nid == chain.c.parent
        )
    )
    entries = state_snapshot_entries
    return (
        select(chain.c.origin, chain.c.lvl, entries.c.state_key_nid, entries.c.event_nid)
        .select_from(chain.join(entries, entries.c.snapshot_nid == chain.c.snap))
        .where(entries.c.state_key_nid.in_(bindparam("keys", expanding=True)))
    )


_ENTRIES = _entries_statement()


class TimelineStore:
    """Queries behind /messages, /context, /members?at= and /timestamp_to_event."""

    async def page(
        self,
        conn: DbConnection,
        room_nid: int,
        *,
        after: Pos | None,
        upto: Pos | None,
        backwards: bool,
        limit: int,
        match: EventMatch | None = None,
    ) -> list[PageRow]:
        """Events with `after` < position <= `upto`, nearest `upto` first when `backwards`."""
        params: dict[str, int] = {"room_nid": room_nid, "limit": limit}
        if after is not None:
            params["after_depth"], params["after_stream"] = after
        if upto is not None:
            params["upto_depth"], params["upto_stream"] = upto
        clause = match.clause() if match is not None else None
        if clause is None:
            stmt = _page_statement(after is not None, upto is not None, backwards)
        else:
            stmt = _page_statement(after is not None, upto is not None, backwards, cached=False).where(clause)
        rows = await conn.execute(stmt, params)
        return [PageRow(nid, (depth, stream)) for nid, depth, stream in rows]

    async def latest(self, conn: DbConnection, room_nid: int, upto: Pos | None = None) -> PageRow | None:
        """The last timeline event at or before `upto` (or the last of all)."""
        found = await self.page(conn, room_nid, after=None, upto=upto, backwards=True, limit=1)
        return found[0] if found else None

    async def at_stream(self, conn: DbConnection, room_nid: int, stream: int) -> PageRow | None:
        """The room's timeline event with the highest stream position <= `stream`."""
        row = (await conn.execute(_AT_STREAM, {"room_nid": room_nid, "stream": stream})).first()
        return PageRow(row[0], (row[1], row[2])) if row else None

    async def state_after_at(self, conn: DbConnection, room_nid: int, upto: Pos) -> int | None:
        """The snapshot after the last timeline event at or before `upto`."""
        params = {"room_nid": room_nid, "depth": upto[0], "stream": upto[1]}
        row = (await conn.execute(_STATE_AFTER_AT, params)).first()
        return row[0] if row else None

    async def by_timestamp(
        self, conn: DbConnection, room_nid: int, ts: int, *, forwards: bool, skip: int, limit: int
    ) -> list[int]:
        """Event nids nearest `ts` (at or after it if `forwards`, else at or before), nearest first."""
        stmt = select(events.c.event_nid).where(events.c.room_nid == room_nid, _IN_TIMELINE)
        if forwards:
            stmt = stmt.where(events.c.origin_server_ts >= ts).order_by(
                events.c.origin_server_ts, events.c.stream_ordering
            )
        else:
            stmt = stmt.where(events.c.origin_server_ts <= ts).order_by(
                events.c.origin_server_ts.desc(), events.c.stream_ordering.desc()
            )
        return [r[0] for r in await conn.execute(stmt.offset(skip).limit(limit))]

    async def entries_at(
        self, conn: DbConnection, snapshot_nids: Collection[int], key_nids: Collection[int]
    ) -> dict[int, dict[int, int]]:
        """{snapshot: {state_key_nid: event_nid}} for just the given keys of each snapshot.

        One recursive query walks every snapshot's delta chain (at most
        MAX_CHAIN links); for each key the entry nearest the snapshot wins.
        """
        out: dict[int, dict[int, int]] = {s: {} for s in snapshot_nids}
        if not snapshot_nids or not key_nids:
            return out
        snaps = list(snapshot_nids)
        keys = list(key_nids)
        for i in range(0, len(snaps), _CHUNK):
            out.update(await self._entries_chunk(conn, snaps[i : i + _CHUNK], keys))
        return out

    async def _entries_chunk(
        self, conn: DbConnection, snaps: list[int], keys: list[int]
    ) -> dict[int, dict[int, int]]:
        rows = await conn.execute(_ENTRIES, {"snapshots": snaps, "keys": keys})
        best: dict[tuple[int, int], tuple[int, int]] = {}
        for origin, lvl, key, event_nid in rows:
            seen = best.get((origin, key))
            if seen is None or lvl < seen[0]:
                best[(origin, key)] = (lvl, event_nid)
        out: dict[int, dict[int, int]] = {s: {} for s in snaps}
        for (origin, key), (_, event_nid) in best.items():
            out[origin][key] = event_nid
        return out

    async def member_event_nids(self, conn: DbConnection, room_nid: int, user_id: str) -> list[int]:
        """Every timeline m.room.member event about `user_id` in the room, newest first."""
        rows = await conn.execute(_MEMBER_EVENTS, {"room_nid": room_nid, "user_id": user_id})
        return [r[0] for r in rows]

    async def txn_ids(
        self, conn: DbConnection, user_id: str, device_id: str, event_ids: Sequence[str]
    ) -> dict[str, str]:
        """{event_id: txn_id} for those of `event_ids` this device sent with a transaction id."""
        found: dict[str, str] = {}
        for i in range(0, len(event_ids), _CHUNK):
            chunk = list(event_ids[i : i + _CHUNK])
            params = {"event_ids": chunk, "user_id": user_id, "device_id": device_id}
            rows = await conn.execute(_TXN_IDS, params)
            found.update({eid: txn for eid, txn in rows})
        return found

    async def room_account_data(
        self, conn: DbConnection, user_id: str, room_id: str
    ) -> list[dict[str, Any]]:
        """The user's account data for one room, as {type, content} objects."""
        rows = await conn.execute(
            select(account_data.c.type, account_data.c.content)
            .where(account_data.c.user_id == user_id, account_data.c.room_id == room_id)
            .order_by(account_data.c.type)
        )
        return [{"type": t, "content": json.loads(c)} for t, c in rows]

    async def membership(self, conn: DbConnection, room_nid: int, user_id: str) -> tuple[str, int] | None:
        """(membership, event_nid) of the user's current membership, on the caller's connection."""
        row = (await conn.execute(_MEMBERSHIP, {"room_nid": room_nid, "user_id": user_id})).first()
        return (row[0], row[1]) if row else None

    async def members(
        self, conn: DbConnection, room_nid: int, memberships: Collection[str] | None = None
    ) -> list[tuple[str, str, int]]:
        """(user_id, membership, event_nid) of current members, optionally of some memberships."""
        stmt = select(room_members.c.user_id, room_members.c.membership, room_members.c.event_nid).where(
            room_members.c.room_nid == room_nid
        )
        if memberships is not None:
            stmt = stmt.where(room_members.c.membership.in_(sorted(memberships)))
        return [(u, m, n) for u, m, n in await conn.execute(stmt.order_by(room_members.c.user_id))]

    async def is_public(self, conn: DbConnection, room_nid: int) -> bool:
        """Whether the room is listed in the public room directory."""
        value = (await conn.execute(select(rooms.c.is_public).where(rooms.c.room_nid == room_nid))).scalar()
        return bool(value)
