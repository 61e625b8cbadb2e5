"""Push storage: users' push rules, notification actions and counts, read positions, pushers.

- `push_rules` / `push_rule_defaults`: a user's own rules and their changes to
  server defaults, read in two queries for any batch of users.
- `event_push_actions`: one row per (local user, event that notified them),
  for GET /notifications and for recounting when a read position moves.
- `push_counts`: unread notification and highlight counts per (user, room,
  thread), kept current by the push service so /sync reads a handful of rows.
- `push_read`: how far each user has read each room (unthreaded: thread "").
- `pushers`: HTTP (and stored-only email) pushers.
- the `stream_counters` row "push_actions": the event stream position up to
  which notifications have been computed, so a restart resumes where it was.

Every query here is on a primary key or index prefix and bounded by the batch
it is given; nothing scans a user's whole history.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, and_, bindparam, delete, func, insert, select, text, update

from hearth.push.rules import DefaultRuleChange, PushRule
from hearth.storage import dialect
from hearth.storage.db import DbConnection
from hearth.storage.encoding import dumps_storable
from hearth.storage.prepared import prepared
from hearth.storage.tables import (
    event_push_actions,
    event_relations,
    events,
    push_counts,
    push_read,
    push_rule_defaults,
    push_rules,
    pushers,
    room_members,
    rooms,
    stream_counters,
    users,
)

PROCESSED_STREAM = "push_actions"
UNTHREADED = ""
MAIN = "main"
_CHUNK = 500

# Statements the push worker runs for every batch of events, built once.
_COUNTS_IN_ROOM = prepared(select(
    push_counts.c.user_id, push_counts.c.thread_id, push_counts.c.notification_count,
    push_counts.c.highlight_count,
).where(push_counts.c.room_nid == bindparam("room_nid"),
        push_counts.c.user_id.in_(bindparam("user_ids", expanding=True))))
_READ_POSITIONS = prepared(
    select(push_read.c.user_id, push_read.c.thread_id, push_read.c.stream_ordering).where(
        push_read.c.room_nid == bindparam("room_nid"),
        push_read.c.user_id.in_(bindparam("user_ids", expanding=True)),
    )
)
_INSERT_ACTIONS = prepared(insert(event_push_actions))
_READ_COLUMNS = ("user_id", "room_nid", "thread_id", "stream_ordering")
_COUNT_COLUMNS = ("user_id", "room_nid", "thread_id", "notification_count", "highlight_count")
_COUNT_KEY = ("user_id", "room_nid", "thread_id")
_CLEAR_COUNTS = prepared(delete(push_counts).where(
    push_counts.c.user_id == bindparam("u"), push_counts.c.room_nid == bindparam("r"),
))
_DROP_COUNT = prepared(_CLEAR_COUNTS.where(push_counts.c.thread_id == bindparam("t")))
# PostgreSQL, `write_batch`: everything a batch of the push worker stores, in
# one statement, each table's rows passed as column arrays. Clearing a user's
# counts in a room spares the threads the batch stores counts for, so no row
# is both deleted and upserted (one statement may not touch a row twice).
_PG_WRITE_BATCH = prepared(text("""
WITH actions AS (
    INSERT INTO event_push_actions (user_id, event_nid, room_nid, stream_ordering, thread_id, actions,
                                    highlight, notified_ts)
    SELECT * FROM unnest(CAST(:a_user AS text[]), CAST(:a_event AS integer[]), CAST(:a_room AS integer[]),
                         CAST(:a_stream AS bigint[]), CAST(:a_thread AS text[]), CAST(:a_actions AS text[]),
                         CAST(:a_highlight AS boolean[]), CAST(:a_ts AS bigint[]))
), reads AS (
    INSERT INTO push_read (user_id, room_nid, thread_id, stream_ordering)
    SELECT * FROM unnest(CAST(:r_user AS text[]), CAST(:r_room AS integer[]), CAST(:r_thread AS text[]),
                         CAST(:r_stream AS bigint[]))
    ON CONFLICT (user_id, room_nid, thread_id) DO UPDATE SET stream_ordering = excluded.stream_ordering
), kept AS (
    SELECT * FROM unnest(CAST(:k_user AS text[]), CAST(:k_room AS integer[]), CAST(:k_thread AS text[]),
                         CAST(:k_n AS integer[]), CAST(:k_h AS integer[])) AS k(u, r, t, n, h)
), cleared AS (
    DELETE FROM push_counts USING unnest(CAST(:c_user AS text[]), CAST(:c_room AS integer[])) AS c(u, r)
    WHERE push_counts.user_id = c.u AND push_counts.room_nid = c.r
      AND NOT EXISTS (SELECT FROM kept WHERE kept.u = c.u AND kept.r = c.r AND kept.t = push_counts.thread_id)
), dropped AS (
    DELETE FROM push_counts
    USING unnest(CAST(:d_user AS text[]), CAST(:d_room AS integer[]), CAST(:d_thread AS text[])) AS d(u, r, t)
    WHERE push_counts.user_id = d.u AND push_counts.room_nid = d.r AND push_counts.thread_id = d.t
), counts AS (
    INSERT INTO push_counts (user_id, room_nid, thread_id, notification_count, highlight_count)
    SELECT u, r, t, n, h FROM kept
    ON CONFLICT (user_id, room_nid, thread_id) DO UPDATE
    SET notification_count = excluded.notification_count, highlight_count = excluded.highlight_count
)
INSERT INTO stream_counters (stream, position) VALUES (CAST(:stream AS text), CAST(:position AS bigint))
ON CONFLICT (stream) DO UPDATE SET position = excluded.position
"""))


class ActionRow(NamedTuple):
    """A notification: one per (user, event) a rule notified; a tuple, made once per recipient per event."""

    user_id: str
    event_nid: int
    room_nid: int
    stream_ordering: int
    thread_id: str
    actions: tuple[Any, ...]
    highlight: bool
    notified_ts: int


@dataclass(frozen=True, slots=True)
class Counts:
    notifications: int
    highlights: int


@dataclass(frozen=True, slots=True)
class CountsWrite:
    """One user's counts in one room to store; `replace_all` first drops threads not in `counts`."""

    room_nid: int
    user_id: str
    counts: dict[str, Counts]
    replace_all: bool


@dataclass(frozen=True, slots=True)
class PusherRow:
    pusher_id: int
    user_id: str
    kind: str
    app_id: str
    pushkey: str
    pushkey_ts: int
    lang: str
    data: dict[str, Any]
    app_display_name: str
    device_display_name: str
    profile_tag: str | None
    device_id: str | None


def _rule_key(user_id: str, kind: str, rule_id: str) -> ColumnElement[bool]:
    return and_(push_rules.c.user_id == user_id, push_rules.c.kind == kind, push_rules.c.rule_id == rule_id)


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class PushStore:
    # --- rules ------------------------------------------------------------------

    async def rules_for(
        self, conn: DbConnection, user_ids: Collection[str]
    ) -> dict[str, tuple[list[PushRule], dict[str, DefaultRuleChange]]]:
        """Each user's own rules (most important first within a kind) and default-rule changes."""
        out: dict[str, tuple[list[PushRule], dict[str, DefaultRuleChange]]] = {
            u: ([], {}) for u in user_ids
        }
        wanted = sorted(user_ids)
        for chunk in _chunks(wanted):
            rows = await conn.execute(
                select(
                    push_rules.c.user_id, push_rules.c.kind, push_rules.c.rule_id, push_rules.c.conditions,
                    push_rules.c.pattern, push_rules.c.actions, push_rules.c.enabled,
                )
                .where(push_rules.c.user_id.in_(chunk))
                .order_by(push_rules.c.user_id, push_rules.c.kind, push_rules.c.priority.desc())
            )
            for user_id, kind, rule_id, conditions, pattern, actions, enabled in rows:
                out[user_id][0].append(PushRule(
                    kind=kind,
                    rule_id=rule_id,
                    actions=tuple(json.loads(actions)),
                    conditions=tuple(json.loads(conditions)) if conditions is not None else None,
                    pattern=pattern,
                    enabled=bool(enabled),
                ))
            rows = await conn.execute(
                select(
                    push_rule_defaults.c.user_id, push_rule_defaults.c.rule_id,
                    push_rule_defaults.c.enabled, push_rule_defaults.c.actions,
                ).where(push_rule_defaults.c.user_id.in_(chunk))
            )
            for user_id, rule_id, enabled, actions in rows:
                out[user_id][1][rule_id] = DefaultRuleChange(
                    enabled=None if enabled is None else bool(enabled),
                    actions=tuple(json.loads(actions)) if actions is not None else None,
                )
        return out

    async def put_rule(self, conn: DbConnection, user_id: str, rule: PushRule, priority: int) -> None:
        """Insert or replace one of the user's own rules."""
        conditions = dumps_storable(list(rule.conditions)) if rule.conditions is not None else None
        await conn.execute(dialect.upsert(conn, push_rules, {
            "user_id": user_id, "kind": rule.kind, "rule_id": rule.rule_id, "priority": priority,
            "conditions": conditions, "pattern": rule.pattern,
            "actions": dumps_storable(list(rule.actions)), "enabled": rule.enabled,
        }, ["user_id", "kind", "rule_id"]))

    async def set_priority(self, conn: DbConnection, user_id: str, kind: str, rule_id: str,
                           priority: int) -> None:
        await conn.execute(
            update(push_rules)
            .where(_rule_key(user_id, kind, rule_id))
            .values(priority=priority)
        )

    async def delete_rule(self, conn: DbConnection, user_id: str, kind: str, rule_id: str) -> bool:
        result = await conn.execute(
            delete(push_rules)
            .where(_rule_key(user_id, kind, rule_id))
            .returning(push_rules.c.rule_id)
        )
        return result.first() is not None

    async def put_default_change(self, conn: DbConnection, user_id: str, rule_id: str,
                                 change: DefaultRuleChange) -> None:
        actions = dumps_storable(list(change.actions)) if change.actions is not None else None
        await conn.execute(dialect.upsert(conn, push_rule_defaults, {
            "user_id": user_id, "rule_id": rule_id, "enabled": change.enabled, "actions": actions,
        }, ["user_id", "rule_id"]))

    # --- processing position ----------------------------------------------------

    async def processed_position(self, conn: DbConnection) -> int | None:
        value = (await conn.execute(
            select(stream_counters.c.position).where(stream_counters.c.stream == PROCESSED_STREAM)
        )).scalar_one_or_none()
        return None if value is None else int(value)

    async def write_batch(self, conn: DbConnection, rows: Sequence[ActionRow],
                          reads: Sequence[tuple[str, int, str, int]], counts: Sequence[CountsWrite],
                          position: int) -> None:
        """Store a worker batch: notifications, read positions, counts and the processed position.

        The batch's only writes, so on PostgreSQL they are one statement (the
        worker waits on every round trip while sends wait on the worker), run
        as its own transaction when nothing was read first.
        """
        if conn.dialect.name != "postgresql":
            await self.insert_actions(conn, rows)
            await self.set_read_positions(conn, reads)
            await self.write_counts(conn, counts)
            await self.set_processed_position(conn, position)
            return
        encoded = _encoded_actions(rows)
        kept, dropped = _count_rows(counts)
        await conn.execute(_PG_WRITE_BATCH, {
            "a_user": [r.user_id for r in rows], "a_event": [r.event_nid for r in rows],
            "a_room": [r.room_nid for r in rows], "a_stream": [r.stream_ordering for r in rows],
            "a_thread": [r.thread_id for r in rows], "a_actions": [encoded[id(r.actions)] for r in rows],
            "a_highlight": [r.highlight for r in rows], "a_ts": [r.notified_ts for r in rows],
            "r_user": [r[0] for r in reads], "r_room": [r[1] for r in reads],
            "r_thread": [r[2] for r in reads], "r_stream": [r[3] for r in reads],
            "k_user": [k["user_id"] for k in kept], "k_room": [k["room_nid"] for k in kept],
            "k_thread": [k["thread_id"] for k in kept], "k_n": [k["notification_count"] for k in kept],
            "k_h": [k["highlight_count"] for k in kept],
            "c_user": [w.user_id for w in counts if w.replace_all],
            "c_room": [w.room_nid for w in counts if w.replace_all],
            "d_user": [d["u"] for d in dropped], "d_room": [d["r"] for d in dropped],
            "d_thread": [d["t"] for d in dropped],
            "stream": PROCESSED_STREAM, "position": position,
        }, alone=True)

    async def set_processed_position(self, conn: DbConnection, position: int) -> None:
        stmt = dialect.upsert_statement(conn, stream_counters, ("stream", "position"), ("stream",))
        await conn.execute(stmt, {"stream": PROCESSED_STREAM, "position": position})

    async def event_nids_between(self, conn: DbConnection, after: int, upto: int, limit: int
                                 ) -> list[tuple[int, int]]:
        """(event_nid, stream_ordering) of timeline events in (after, upto], oldest first."""
        rows = await conn.execute(
            select(events.c.event_nid, events.c.stream_ordering)
            .where(events.c.stream_ordering > after, events.c.stream_ordering <= upto)
            .order_by(events.c.stream_ordering)
            .limit(limit)
        )
        return [(r[0], r[1]) for r in rows]

    # --- rooms --------------------------------------------------------------------

    async def joined_members(self, conn: DbConnection, room_nids: Collection[int]
                             ) -> dict[int, dict[str, int]]:
        """room_nid -> {joined user: stream position of their join}."""
        out: dict[int, dict[str, int]] = {r: {} for r in room_nids}
        for chunk in _chunks(sorted(room_nids)):
            rows = await conn.execute(
                select(room_members.c.room_nid, room_members.c.user_id, room_members.c.stream_ordering)
                .where(room_members.c.room_nid.in_(chunk), room_members.c.membership == "join")
            )
            for room_nid, user_id, stream in rows:
                out[room_nid][user_id] = stream
        return out

    async def room_id(self, conn: DbConnection, room_nid: int) -> str:
        stmt = select(rooms.c.room_id).where(rooms.c.room_nid == room_nid)
        return str((await conn.execute(stmt)).scalar_one())

    async def relations_of(self, conn: DbConnection, event_ids: Collection[str]
                           ) -> dict[str, tuple[str, str]]:
        """event_id -> (rel_type, parent event id) for those of `event_ids` that relate to another."""
        out: dict[str, tuple[str, str]] = {}
        for chunk in _chunks(sorted(event_ids)):
            rows = await conn.execute(
                select(events.c.event_id, event_relations.c.rel_type, event_relations.c.relates_to_id)
                .select_from(events.join(event_relations, event_relations.c.event_nid == events.c.event_nid))
                .where(events.c.event_id.in_(chunk))
            )
            for event_id, rel_type, parent in rows:
                out[event_id] = (rel_type, parent)
        return out

    # --- read positions and counts ------------------------------------------------

    async def read_positions(self, conn: DbConnection, room_nid: int, user_ids: Collection[str]
                             ) -> dict[tuple[str, str], int]:
        """(user, thread) -> read position in one room; thread "" is the unthreaded position."""
        out: dict[tuple[str, str], int] = {}
        for chunk in _chunks(sorted(user_ids)):
            rows = await conn.execute(_READ_POSITIONS, {"room_nid": room_nid, "user_ids": list(chunk)})
            for user_id, thread_id, stream in rows:
                out[(user_id, thread_id)] = stream
        return out

    async def user_read_positions(self, conn: DbConnection, user_id: str, room_nids: Collection[int]
                                  ) -> dict[tuple[int, str], int]:
        """(room, thread) -> one user's read position, for some rooms."""
        out: dict[tuple[int, str], int] = {}
        for chunk in _chunks(sorted(room_nids)):
            rows = await conn.execute(
                select(push_read.c.room_nid, push_read.c.thread_id, push_read.c.stream_ordering)
                .where(push_read.c.user_id == user_id, push_read.c.room_nid.in_(chunk))
            )
            for room_nid, thread_id, stream in rows:
                out[(room_nid, thread_id)] = stream
        return out

    async def set_read_positions(self, conn: DbConnection, reads: Sequence[tuple[str, int, str, int]]
                                 ) -> None:
        """Store (user, room, thread, position) read positions, in one statement."""
        if not reads:
            return
        await conn.execute(dialect.upsert_statement(conn, push_read, _READ_COLUMNS, _COUNT_KEY), [
            {"user_id": u, "room_nid": r, "thread_id": t, "stream_ordering": pos} for u, r, t, pos in reads
        ])

    async def counts_in_room(self, conn: DbConnection, room_nid: int, user_ids: Collection[str]
                             ) -> dict[tuple[str, str], Counts]:
        """(user, thread) -> stored counts in one room."""
        out: dict[tuple[str, str], Counts] = {}
        for chunk in _chunks(sorted(user_ids)):
            rows = await conn.execute(_COUNTS_IN_ROOM, {"room_nid": room_nid, "user_ids": list(chunk)})
            for user_id, thread_id, n, h in rows:
                out[(user_id, thread_id)] = Counts(n, h)
        return out

    async def unread_counts(self, conn: DbConnection, user_id: str, room_nids: Collection[int]
                            ) -> dict[int, dict[str, Counts]]:
        """room -> thread -> counts for one user (rooms without unread notifications are left out)."""
        out: dict[int, dict[str, Counts]] = {}
        for chunk in _chunks(sorted(room_nids)):
            rows = await conn.execute(
                select(push_counts.c.room_nid, push_counts.c.thread_id, push_counts.c.notification_count,
                       push_counts.c.highlight_count)
                .where(push_counts.c.user_id == user_id, push_counts.c.room_nid.in_(chunk))
            )
            for room_nid, thread_id, n, h in rows:
                out.setdefault(room_nid, {})[thread_id] = Counts(n, h)
        return out

    async def total_unread(self, conn: DbConnection, user_id: str) -> int:
        """Unread notifications across all the user's rooms (the badge a push gateway shows)."""
        value = (await conn.execute(
            select(func.sum(push_counts.c.notification_count)).where(push_counts.c.user_id == user_id)
        )).scalar()
        return int(value or 0)

    async def write_counts(self, conn: DbConnection, writes: Sequence[CountsWrite]) -> None:
        """Store users' counts per room: one statement per kind of change, not per row.

        A message in a room of N members changes N users' counts; on PostgreSQL
        each statement is a round trip. The pairs are distinct, so the order
        across them does not matter; within one, clearing comes first.
        """
        cleared = [{"u": w.user_id, "r": w.room_nid} for w in writes if w.replace_all]
        kept, dropped = _count_rows(writes)
        if cleared:
            await conn.execute(_CLEAR_COUNTS, cleared)
        if dropped:
            await conn.execute(_DROP_COUNT, dropped)
        if kept:
            await conn.execute(dialect.upsert_statement(conn, push_counts, _COUNT_COLUMNS, _COUNT_KEY), kept)

    async def recount(self, conn: DbConnection, user_id: str, room_nid: int, reads: dict[str, int]
                      ) -> dict[str, Counts]:
        """Count a user's notifications in a room past their read positions (`reads`: thread -> pos).

        Only rows after the unthreaded position are read: that bounds the work by
        the number of unread notifications.
        """
        unthreaded = reads.get(UNTHREADED, 0)
        rows = await conn.execute(
            select(event_push_actions.c.thread_id, event_push_actions.c.stream_ordering,
                   event_push_actions.c.highlight)
            .where(
                event_push_actions.c.user_id == user_id,
                event_push_actions.c.room_nid == room_nid,
                event_push_actions.c.stream_ordering > unthreaded,
            )
        )
        totals: dict[str, list[int]] = {}
        for thread_id, stream, highlight in rows:
            if stream <= reads.get(thread_id, 0):
                continue
            entry = totals.setdefault(thread_id, [0, 0])
            entry[0] += 1
            entry[1] += 1 if highlight else 0
        return {t: Counts(n, h) for t, (n, h) in totals.items()}

    # --- notification actions ---------------------------------------------------

    async def insert_actions(self, conn: DbConnection, rows: Sequence[ActionRow]) -> None:
        if not rows:
            return
        encoded = _encoded_actions(rows)
        await conn.execute(_INSERT_ACTIONS, [
            {
                "user_id": r.user_id, "event_nid": r.event_nid, "room_nid": r.room_nid,
                "stream_ordering": r.stream_ordering, "thread_id": r.thread_id,
                "actions": encoded[id(r.actions)], "highlight": r.highlight,
                "notified_ts": r.notified_ts,
            }
            for r in rows
        ])

    async def notifications(self, conn: DbConnection, user_id: str, *, before: int | None, limit: int,
                            only_highlight: bool) -> list[ActionRow]:
        """A user's notifications, newest first, older than stream position `before`."""
        stmt = select(
            event_push_actions.c.event_nid, event_push_actions.c.room_nid,
            event_push_actions.c.stream_ordering, event_push_actions.c.thread_id,
            event_push_actions.c.actions, event_push_actions.c.highlight, event_push_actions.c.notified_ts,
        ).where(event_push_actions.c.user_id == user_id)
        if before is not None:
            stmt = stmt.where(event_push_actions.c.stream_ordering < before)
        if only_highlight:
            stmt = stmt.where(event_push_actions.c.highlight.is_(True))
        rows = await conn.execute(stmt.order_by(event_push_actions.c.stream_ordering.desc()).limit(limit))
        return [
            ActionRow(user_id, nid, room_nid, stream, thread, tuple(json.loads(actions)), bool(hl), ts)
            for nid, room_nid, stream, thread, actions, hl, ts in rows
        ]

    # --- pushers ------------------------------------------------------------------

    _PUSHER_COLUMNS = (
        pushers.c.pusher_id, pushers.c.user_id, pushers.c.kind, pushers.c.app_id, pushers.c.pushkey,
        pushers.c.pushkey_ts, pushers.c.lang, pushers.c.data, pushers.c.app_display_name,
        pushers.c.device_display_name, pushers.c.profile_tag, pushers.c.device_id,
    )

    @staticmethod
    def _pusher(row: Any) -> PusherRow:
        (pid, user_id, kind, app_id, pushkey, ts, lang, data, app_name, device_name, tag, device) = row
        return PusherRow(pid, user_id, kind, app_id, pushkey, ts, lang, json.loads(data), app_name,
                         device_name, tag, device)

    async def all_pushers(self, conn: DbConnection) -> list[PusherRow]:
        rows = await conn.execute(select(*self._PUSHER_COLUMNS).order_by(pushers.c.pusher_id))
        return [self._pusher(r) for r in rows]

    async def pushers_of(self, conn: DbConnection, user_id: str) -> list[PusherRow]:
        rows = await conn.execute(
            select(*self._PUSHER_COLUMNS).where(pushers.c.user_id == user_id).order_by(pushers.c.pusher_id)
        )
        return [self._pusher(r) for r in rows]

    async def upsert_pusher(self, conn: DbConnection, row: PusherRow) -> None:
        values = {
            "user_id": row.user_id, "kind": row.kind, "app_id": row.app_id, "pushkey": row.pushkey,
            "pushkey_ts": row.pushkey_ts, "lang": row.lang, "data": dumps_storable(row.data),
            "app_display_name": row.app_display_name, "device_display_name": row.device_display_name,
            "profile_tag": row.profile_tag, "device_id": row.device_id,
        }
        await conn.execute(dialect.upsert(conn, pushers, values, ["user_id", "app_id", "pushkey"]))

    async def delete_pusher(self, conn: DbConnection, user_id: str, app_id: str, pushkey: str) -> bool:
        result = await conn.execute(
            delete(pushers)
            .where(pushers.c.user_id == user_id, pushers.c.app_id == app_id, pushers.c.pushkey == pushkey)
            .returning(pushers.c.pusher_id)
        )
        return result.first() is not None

    async def delete_pushers_of_others(self, conn: DbConnection, user_id: str, app_id: str, pushkey: str
                                       ) -> list[str]:
        """Remove pushers with this app_id and pushkey that belong to other users; returns those users."""
        result = await conn.execute(
            delete(pushers)
            .where(pushers.c.app_id == app_id, pushers.c.pushkey == pushkey, pushers.c.user_id != user_id)
            .returning(pushers.c.user_id)
        )
        return [r[0] for r in result]

    async def deactivated_pusher_owners(self, conn: DbConnection) -> list[str]:
        """Deactivated accounts that still have pushers."""
        rows = await conn.execute(
            select(pushers.c.user_id).distinct()
            .select_from(pushers.join(users, users.c.user_id == pushers.c.user_id))
            .where(users.c.deactivated.is_(True))
            .order_by(pushers.c.user_id)
        )
        return [r[0] for r in rows]

    async def delete_all_pushers(self, conn: DbConnection, user_id: str) -> None:
        """Drop every pusher of a user (e.g. when the account is deactivated)."""
        await conn.execute(delete(pushers).where(pushers.c.user_id == user_id))


def _encoded_actions(rows: Sequence[ActionRow]) -> dict[int, str]:
    """id(actions) -> stored JSON: members with the same outcome share one tuple, encoded once."""
    encoded: dict[int, str] = {}
    for r in rows:
        if id(r.actions) not in encoded:
            encoded[id(r.actions)] = dumps_storable(list(r.actions))
    return encoded


def _count_rows(writes: Sequence[CountsWrite]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The count rows to store (non-zero) and, outside a full replacement, those to drop (zero)."""
    dropped: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    for w in writes:
        for thread_id, c in w.counts.items():
            if c.notifications or c.highlights:
                kept.append({"user_id": w.user_id, "room_nid": w.room_nid, "thread_id": thread_id,
                             "notification_count": c.notifications, "highlight_count": c.highlights})
            elif not w.replace_all:
                dropped.append({"u": w.user_id, "r": w.room_nid, "t": thread_id})
    return kept, dropped
