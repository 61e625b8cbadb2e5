"""Events: stored once as canonical PDU JSON plus the columns queries need.

Parsed `Event` objects are immutable, so they are cached by event nid; the few
facts that can change after an event is stored (which redaction applies to it)
are read from the row each time.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, Row, Text, bindparam, column, func, insert, select, text, update

from hearth.core.canonical_json import encode_canonical_json
from hearth.core.events import Event
from hearth.core.room_versions import KNOWN_ROOM_VERSIONS
from hearth.storage.db import DbConnection
from hearth.storage.prepared import prepared
from hearth.storage.relations import THREAD, note_thread_event
from hearth.storage.search import index_event, indexed_text, unindex_event
from hearth.storage.tables import event_auth_edges, event_edges, event_relations, events, rooms


@dataclass(frozen=True, slots=True)
class StoredEvent:
    event: Event
    event_nid: int
    room_nid: int
    stream_ordering: int | None
    state_before_nid: int | None
    state_after_nid: int | None
    rejected_reason: str | None
    redacted_by: str | None
    outlier: bool

    @property
    def event_id(self) -> str:
        return self.event.event_id


_COLUMNS = (
    events.c.event_nid,
    events.c.event_id,
    events.c.room_nid,
    events.c.stream_ordering,
    events.c.state_before_nid,
    events.c.state_after_nid,
    events.c.rejected_reason,
    events.c.redacted_by,
    events.c.outlier,
    events.c.json,
    rooms.c.room_version,
)
_FROM = events.join(rooms, rooms.c.room_nid == events.c.room_nid)
# Built once: reusing the statement objects spares SQLAlchemy rebuilding them per call.
_BY_IDS = prepared(
    select(*_COLUMNS).select_from(_FROM).where(events.c.event_id.in_(bindparam("ids", expanding=True)))
)
_BY_NIDS = prepared(select(*_COLUMNS).select_from(_FROM).where(
    events.c.event_nid.in_(bindparam("nids", expanding=True))
))

# Hot-path statements built once: executing a prebuilt statement with a
# parameter dict skips SQLAlchemy's per-call expression building.
_INSERT_EVENT = prepared(insert(events).returning(events.c.event_nid))
_INSERT_EDGE = prepared(insert(event_edges))
_INSERT_AUTH_EDGE = prepared(insert(event_auth_edges))
_SET_STATE_AFTER = prepared(
    update(events).where(events.c.event_nid == bindparam("nid")).values(state_after_nid=bindparam("after"))
)
# PostgreSQL, `insert_on_head`: every write of a plain timeline event in one
# statement. The event goes in only if the client transaction id is new (or
# none is given); everything else hangs off the event row, so a repeated id
# writes nothing and returns no row. Foreign keys are checked at the end of
# the statement, when the event row exists.
_PG_INSERT_ON_HEAD = prepared(text("""
WITH claim AS (
    INSERT INTO event_txn_ids (user_id, device_id, txn_id, event_id, created_ts)
    SELECT CAST(:txn_user AS text), CAST(:txn_device AS text), CAST(:txn_id AS text),
           CAST(:event_id AS text), CAST(:ts AS bigint)
    WHERE CAST(:txn_id AS text) IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING 1
), ev AS (
    INSERT INTO events (event_id, room_nid, type, sender, depth, origin_server_ts, stream_ordering, json,
                        state_before_nid, state_after_nid, outlier)
    SELECT CAST(:event_id AS text), CAST(:room_nid AS integer), CAST(:type AS text), CAST(:sender AS text),
           CAST(:depth AS bigint), CAST(:ts AS bigint), CAST(:stream AS bigint), CAST(:json AS text),
           CAST(:state_nid AS integer), CAST(:state_nid AS integer), false
    WHERE CAST(:txn_id AS text) IS NULL OR EXISTS (SELECT FROM claim)
    RETURNING event_nid
), prevs AS (
    INSERT INTO event_edges (event_nid, prev_event_id)
    SELECT ev.event_nid, p FROM ev, unnest(CAST(:prevs AS text[])) AS p
), auths AS (
    INSERT INTO event_auth_edges (event_nid, auth_event_id)
    SELECT ev.event_nid, a FROM ev, unnest(CAST(:auths AS text[])) AS a
), search AS (
    INSERT INTO event_search (event_nid, room_nid, key, value, stream_ordering)
    SELECT ev.event_nid, CAST(:room_nid AS integer), CAST(:search_key AS text), CAST(:search_text AS text),
           CAST(:stream AS bigint)
    FROM ev WHERE CAST(:search_key AS text) IS NOT NULL
), head AS (
    UPDATE forward_extremities SET event_nid = ev.event_nid FROM ev
    WHERE forward_extremities.room_nid = CAST(:room_nid AS integer)
      AND forward_extremities.event_nid = CAST(:old_head AS integer)
    RETURNING 1
), new_head AS (
    INSERT INTO forward_extremities (room_nid, event_nid)
    SELECT CAST(:room_nid AS integer), ev.event_nid FROM ev WHERE NOT EXISTS (SELECT FROM head)
)
SELECT event_nid FROM ev
""").columns(column("event_nid", Integer)))
# PostgreSQL, `insert_chain`: events built each on the one before, all in one
# statement, the rows of each table passed as column arrays. All or nothing:
# if any transaction id is already taken nothing is written; one claimed
# meanwhile (or twice in the chain) fails the claim insert, and so the statement.
_PG_INSERT_CHAIN = prepared(text("""
WITH fresh AS (
    -- One key lookup per claim (LATERAL ... LIMIT 1): a join here may be
    -- planned as a scan of the whole table.
    SELECT NOT EXISTS (
        SELECT FROM unnest(CAST(:t_user AS text[]), CAST(:t_device AS text[]), CAST(:t_txn AS text[]))
            AS k(u, d, x)
        CROSS JOIN LATERAL (
            SELECT FROM event_txn_ids t WHERE t.user_id = k.u AND t.device_id = k.d AND t.txn_id = k.x LIMIT 1
        ) AS taken
    ) AS ok
), claim AS (
    INSERT INTO event_txn_ids (user_id, device_id, txn_id, event_id, created_ts)
    SELECT k.* FROM fresh, unnest(CAST(:t_user AS text[]), CAST(:t_device AS text[]), CAST(:t_txn AS text[]),
                                  CAST(:t_event AS text[]), CAST(:t_ts AS bigint[])) AS k
    WHERE fresh.ok
), ev AS (
    INSERT INTO events (event_id, room_nid, type, sender, depth, origin_server_ts, stream_ordering, json,
                        state_before_nid, state_after_nid, outlier)
    SELECT e.id, CAST(:room_nid AS integer), e.type, e.sender, e.depth, e.ts, e.stream, e.json,
           CAST(:state_nid AS integer), CAST(:state_nid AS integer), false
    FROM fresh, unnest(CAST(:e_id AS text[]), CAST(:e_type AS text[]), CAST(:e_sender AS text[]),
                       CAST(:e_depth AS bigint[]), CAST(:e_ts AS bigint[]), CAST(:e_stream AS bigint[]),
                       CAST(:e_json AS text[])) AS e(id, type, sender, depth, ts, stream, json)
    WHERE fresh.ok
    RETURNING event_id, event_nid
), prevs AS (
    INSERT INTO event_edges (event_nid, prev_event_id)
    SELECT ev.event_nid, p.prev FROM ev
    JOIN unnest(CAST(:p_event AS text[]), CAST(:p_prev AS text[])) AS p(id, prev) ON p.id = ev.event_id
), auths AS (
    INSERT INTO event_auth_edges (event_nid, auth_event_id)
    SELECT ev.event_nid, a.auth FROM ev
    JOIN unnest(CAST(:u_event AS text[]), CAST(:u_auth AS text[])) AS a(id, auth) ON a.id = ev.event_id
), search AS (
    INSERT INTO event_search (event_nid, room_nid, key, value, stream_ordering)
    SELECT ev.event_nid, CAST(:room_nid AS integer), s.key, s.value, s.stream FROM ev
    JOIN unnest(CAST(:s_event AS text[]), CAST(:s_key AS text[]), CAST(:s_value AS text[]),
                CAST(:s_stream AS bigint[])) AS s(id, key, value, stream) ON s.id = ev.event_id
), head AS (
    UPDATE forward_extremities SET event_nid = ev.event_nid FROM ev
    WHERE ev.event_id = CAST(:last AS text) AND forward_extremities.room_nid = CAST(:room_nid AS integer)
      AND forward_extremities.event_nid = CAST(:old_head AS integer)
    RETURNING 1
), new_head AS (
    INSERT INTO forward_extremities (room_nid, event_nid)
    SELECT CAST(:room_nid AS integer), ev.event_nid FROM ev
    WHERE ev.event_id = CAST(:last AS text) AND NOT EXISTS (SELECT FROM head)
)
SELECT event_id, event_nid FROM ev
""").columns(column("event_id", Text), column("event_nid", Integer)))


def relation_of(event: Event) -> tuple[str, str, str | None] | None:
    """(target event id, rel_type, annotation key) from content.m.relates_to."""
    rel = event.content.get("m.relates_to")
    if not isinstance(rel, dict):
        return None
    target, rel_type = rel.get("event_id"), rel.get("rel_type")
    if not isinstance(target, str) or not isinstance(rel_type, str):
        return None
    key = rel.get("key")
    return target, rel_type, key if isinstance(key, str) and rel_type == "m.annotation" else None


class EventsStore:
    _CACHE_SIZE = 20_000

    def __init__(self) -> None:
        self._parsed: OrderedDict[int, Event] = OrderedDict()

    def _row_to_stored(self, row: Row[*tuple[Any, ...]]) -> StoredEvent:
        (nid, event_id, room_nid, stream, before, after, rejected, redacted_by, outlier, text, version) = row
        event = self._parsed.get(nid)
        if event is None:
            event = Event(json.loads(text), event_id, KNOWN_ROOM_VERSIONS[version])
            self._parsed[nid] = event
            if len(self._parsed) > self._CACHE_SIZE:
                self._parsed.popitem(last=False)
        return StoredEvent(event, nid, room_nid, stream, before, after, rejected, redacted_by, bool(outlier))

    def forget_cached(self) -> None:
        """Drop parsed events: a failed transaction may have used nids that get reused."""
        self._parsed.clear()

    async def by_ids(self, conn: DbConnection, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
        ids = list(set(event_ids))
        found: dict[str, StoredEvent] = {}
        for i in range(0, len(ids), 500):
            rows = await conn.execute(_BY_IDS, {"ids": ids[i : i + 500]})
            for row in rows:
                stored = self._row_to_stored(row)
                found[stored.event_id] = stored
        return found

    async def by_nids(self, conn: DbConnection, nids: Iterable[int]) -> dict[int, StoredEvent]:
        wanted = list(set(nids))
        found: dict[int, StoredEvent] = {}
        for i in range(0, len(wanted), 500):
            rows = await conn.execute(_BY_NIDS, {"nids": wanted[i : i + 500]})
            for row in rows:
                stored = self._row_to_stored(row)
                found[stored.event_nid] = stored
        return found

    async def events_by_nids(self, conn: DbConnection, nids: Iterable[int]) -> dict[int, Event]:
        """Events by nid, from the parse cache where possible (events never change)."""
        out: dict[int, Event] = {}
        missing: list[int] = []
        for nid in nids:
            event = self._parsed.get(nid)
            if event is None:
                missing.append(nid)
            else:
                out[nid] = event
        if missing:
            for nid, stored in (await self.by_nids(conn, missing)).items():
                out[nid] = stored.event
        return out

    async def insert(
        self,
        conn: DbConnection,
        event: Event,
        *,
        room_nid: int,
        stream_ordering: int | None,
        state_before_nid: int | None,
        state_after_nid: int | None,
        rejected_reason: str | None = None,
        outlier: bool = False,
    ) -> int:
        nid: int = (
            await conn.execute(
                _INSERT_EVENT,
                {
                    "event_id": event.event_id,
                    "room_nid": room_nid,
                    "type": event.type,
                    "state_key": event.state_key,
                    "sender": event.sender,
                    "depth": event.depth,
                    "origin_server_ts": event.origin_server_ts,
                    "stream_ordering": stream_ordering,
                    "json": encode_canonical_json(event.pdu).decode(),
                    "state_before_nid": state_before_nid,
                    "state_after_nid": state_after_nid,
                    "rejected_reason": rejected_reason,
                    "outlier": outlier,
                    "redacted_by": None,
                },
            )
        ).scalar_one()
        prevs = event.prev_event_ids
        if prevs:
            await conn.execute(
                _INSERT_EDGE, [{"event_nid": nid, "prev_event_id": p} for p in dict.fromkeys(prevs)]
            )
        auths = event.auth_event_ids
        if auths:
            await conn.execute(
                _INSERT_AUTH_EDGE, [{"event_nid": nid, "auth_event_id": a} for a in dict.fromkeys(auths)]
            )
        relation = relation_of(event)
        if relation is not None and rejected_reason is None:
            target, rel_type, key = relation
            await conn.execute(
                insert(event_relations).values(
                    event_nid=nid, relates_to_id=target, rel_type=rel_type, aggregation_key=key
                )
            )
        if rejected_reason is None and stream_ordering is not None and not outlier:
            await index_event(conn, event, nid, room_nid, stream_ordering)
            if relation is not None and relation[1] == THREAD:
                await note_thread_event(conn, room_nid, relation[0], nid, stream_ordering)
        self._parsed[nid] = event
        return nid

    async def insert_on_head(
        self,
        conn: DbConnection,
        event: Event,
        *,
        room_nid: int,
        stream_ordering: int,
        state_nid: int,
        old_head_nid: int,
        txn: tuple[str, str, str] | None,
        alone: bool = False,
    ) -> int | None:
        """PostgreSQL: store a plain event that replaces the room's one head, in one round trip.

        The same writes as `RoomsStore.claim_txn`, `insert` and
        `RoomsStore.replace_extremities` for an accepted timeline event with no
        state key and no relation (the common message), which would be six
        statements. `txn` is (user, device, txn id) to claim; returns None,
        having written nothing, if that id already sent an event. `alone`: the
        caller writes nothing else in this transaction (see `DbConnection.execute`).
        """
        assert not event.is_state() and relation_of(event) is None
        search = indexed_text(event)
        txn_user, txn_device, txn_id = txn if txn is not None else (None, None, None)
        nid: int | None = (await conn.execute(_PG_INSERT_ON_HEAD, {
            "txn_user": txn_user, "txn_device": txn_device, "txn_id": txn_id,
            "event_id": event.event_id, "room_nid": room_nid, "type": event.type, "sender": event.sender,
            "depth": event.depth, "ts": event.origin_server_ts, "stream": stream_ordering,
            "json": encode_canonical_json(event.pdu).decode(), "state_nid": state_nid,
            "prevs": list(dict.fromkeys(event.prev_event_ids)),
            "auths": list(dict.fromkeys(event.auth_event_ids)),
            "search_key": search[0] if search else None, "search_text": search[1] if search else None,
            "old_head": old_head_nid,
        }, alone=alone)).scalar_one_or_none()
        if nid is not None:
            self._parsed[nid] = event
        return nid

    async def insert_chain(
        self,
        conn: DbConnection,
        chain: Sequence[tuple[Event, tuple[str, str, str] | None]],
        *,
        room_nid: int,
        streams: Sequence[int],
        state_nid: int,
        old_head_nid: int,
    ) -> dict[str, int] | None:
        """PostgreSQL: `insert_on_head` for events each built on the one before, in one statement.

        (A single event keeps `insert_on_head`: its statement cost PostgreSQL
        about half as much per send as a chain of one, measured in the rooms
        benchmark.)

        `chain` pairs each event with its (user, device, txn id) claim; the
        first event's prev is the room's head `old_head_nid`, the last becomes
        the head. Returns event id -> nid, or None (nothing written) if a
        transaction id was already used. Run as the whole of its transaction.
        """
        events_ = [event for event, _ in chain]
        claims = [(txn, event.event_id, event.origin_server_ts) for event, txn in chain if txn is not None]
        prevs = [(e.event_id, p) for e in events_ for p in dict.fromkeys(e.prev_event_ids)]
        auths = [(e.event_id, a) for e in events_ for a in dict.fromkeys(e.auth_event_ids)]
        texts = [(e.event_id, found, stream) for e, stream in zip(events_, streams, strict=True)
                 if (found := indexed_text(e)) is not None]
        rows = (await conn.execute(_PG_INSERT_CHAIN, {
            "t_user": [c[0][0] for c in claims], "t_device": [c[0][1] for c in claims],
            "t_txn": [c[0][2] for c in claims], "t_event": [c[1] for c in claims],
            "t_ts": [c[2] for c in claims],
            "room_nid": room_nid, "state_nid": state_nid,
            "e_id": [e.event_id for e in events_], "e_type": [e.type for e in events_],
            "e_sender": [e.sender for e in events_], "e_depth": [e.depth for e in events_],
            "e_ts": [e.origin_server_ts for e in events_], "e_stream": list(streams),
            "e_json": [encode_canonical_json(e.pdu).decode() for e in events_],
            "p_event": [p[0] for p in prevs], "p_prev": [p[1] for p in prevs],
            "u_event": [a[0] for a in auths], "u_auth": [a[1] for a in auths],
            "s_event": [t[0] for t in texts], "s_key": [t[1][0] for t in texts],
            "s_value": [t[1][1] for t in texts], "s_stream": [t[2] for t in texts],
            "last": events_[-1].event_id, "old_head": old_head_nid,
        }, alone=True)).all()
        if not rows:
            return None
        nids = {event_id: nid for event_id, nid in rows}
        for event in events_:
            self._parsed[nids[event.event_id]] = event
        return nids

    async def set_state_after(self, conn: DbConnection, event_nid: int, snapshot_nid: int) -> None:
        await conn.execute(_SET_STATE_AFTER, {"nid": event_nid, "after": snapshot_nid})

    async def set_redacted_by(self, conn: DbConnection, event_id: str, redaction_id: str) -> None:
        await conn.execute(
            update(events)
            .where(events.c.event_id == event_id)
            .where(events.c.redacted_by.is_(None))
            .values(redacted_by=redaction_id)
        )
        await unindex_event(conn, event_id)

    async def auth_chain(self, conn: DbConnection, event_ids: Sequence[str]) -> dict[str, StoredEvent]:
        """The given events and every event in their auth chains."""
        found: dict[str, StoredEvent] = {}
        frontier = set(event_ids)
        while frontier:
            batch = await self.by_ids(conn, frontier)
            found.update(batch)
            frontier = {a for e in batch.values() for a in e.event.auth_event_ids} - found.keys()
        return found

    async def max_stream_ordering(self, conn: DbConnection) -> int:
        value = (await conn.execute(select(func.max(events.c.stream_ordering)))).scalar()
        return int(value or 0)
