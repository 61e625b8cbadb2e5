"""The single path by which any event joins a room's DAG.

Local sends (and, later, events from federation, backfill, invites and joins)
all end in `EventPersister.persist`, which, inside one transaction:

1. works out the state before the event from its prev_events (the room's
   current state when they are exactly the forward extremities; one parent's
   state after it; otherwise state resolution over the parents' states);
2. checks the event against the auth rules with the auth events picked from
   that state;
3. claims the client's transaction id, if any (`DuplicateTxn` if it already
   sent an event), and stores the event with a new stream position, and the
   state after it as a snapshot sharing structure with the state before;
4. moves the forward extremities, and updates current state and membership
   (resolving across extremities if the DAG has forked);
5. after commit, tells the notifier.

Writes to one room are serialised by a per-room lock that callers hold while
they also read the room to build an event (`locked`). Different rooms proceed
concurrently. Every round trip made under the lock is time the room's other
senders wait, so on PostgreSQL the common case (a plain event on the room's
one head) is one statement (`EventsStore.insert_on_head`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from hearth.core.auth import AuthError, auth_types_for_event, check_auth_rules
from hearth.core.events import Event, StateKey
from hearth.core.power_levels import PowerLevels
from hearth.core.room_versions import EventFormat
from hearth.core.state_res import resolve_state
from hearth.notifier import Notifier
from hearth.storage.db import Database, DbConnection
from hearth.storage.events import EventsStore, StoredEvent, relation_of
from hearth.storage.positions import PositionTracker
from hearth.storage.rooms import Extremity, RoomInfo, RoomsStore
from hearth.storage.state import SnapshotInfo, StateStore

CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")


class EventRejected(Exception):
    """The event failed the auth rules against the state before it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DuplicateTxn(Exception):
    """The client transaction id already sent an event (a retried request): nothing was stored."""

    def __init__(self, event_id: str) -> None:
        super().__init__(event_id)
        self.event_id = event_id


@dataclass(frozen=True, slots=True)
class TxnRecord:
    """A client transaction id to remember with the event (idempotent sends).

    Persisting with one first claims it in the same write transaction (stored
    with the event, or rolled back with it) and raises `DuplicateTxn` if an
    event was already sent with it.
    """

    user_id: str
    device_id: str
    txn_id: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.user_id, self.device_id, self.txn_id)


@dataclass
class RoomHead:
    """What the next event in a room builds on, cached between persists.

    The persister is the only writer of a room's extremities and current state
    and holds the room's lock while it writes, so this cache stays exact; it is
    dropped whenever a write fails. `state` caches only the current-state
    entries someone asked for (key nid -> event nid, or None where the room has
    no such state).
    """

    extremities: list[Extremity]
    snapshot: SnapshotInfo | None
    state: dict[int, int | None]


# Told of each persisted event right after its commit: the stored event, and
# whether the room's current state (membership included) changed with it. A
# plain message leaves it alone; a state event or a merge of forks may not.
PersistedListener = Callable[[StoredEvent, bool], None]
# Finishes the work an event's persist started (push actions and unread
# counts), up to a stream position; a client's send awaits it before answering.
Settler = Callable[[int], Awaitable[None]]


class EventPersister:
    def __init__(
        self,
        *,
        db: Database,
        rooms: RoomsStore,
        events: EventsStore,
        state: StateStore,
        positions: PositionTracker,
        notifier: Notifier,
    ) -> None:
        self._db = db
        self._rooms = rooms
        self._events = events
        self._state = state
        self._positions = positions
        self._notifier = notifier
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._heads: dict[int, RoomHead] = {}
        self._listeners: list[PersistedListener] = []
        self._settlers: list[Settler] = []
        # PostgreSQL stores a plain event on the room's one head in one round trip.
        self._one_statement = not db.is_sqlite

    def add_persisted_listener(self, listener: PersistedListener) -> None:
        """Hear of each event after it commits, in persist order (see `PersistedListener`)."""
        self._listeners.append(listener)

    def add_settler(self, settler: Settler) -> None:
        """Register follow-up work that `settle` waits for (see `Settler`)."""
        self._settlers.append(settler)

    async def settle(self, position: int) -> None:
        """Wait until the follow-up work of every event up to `position` is done.

        A client's send calls it once the room's lock is released, so by the
        time the sender hears back, the event's notifications and counts exist
        (as Synapse computes push actions before it persists): the next /sync
        of any member finds them ready instead of computing them itself.
        """
        for settler in self._settlers:
            await settler(position)

    @asynccontextmanager
    async def locked(self, room_id: str) -> AsyncIterator[None]:
        """Hold the room's write lock (build-then-persist must not interleave)."""
        lock = self._locks.get(room_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[room_id] = lock
        async with lock:
            yield

    async def head(self, conn: DbConnection, room: RoomInfo) -> RoomHead:
        """The room's forward extremities and current snapshot (caller holds the lock)."""
        head = self._heads.get(room.room_nid)
        if head is None:
            extremities = await self._rooms.extremities(conn, room.room_nid)
            current_nid = await self._rooms.current_snapshot_nid(conn, room.room_nid)
            snapshot = await self._state.snapshot_info(conn, current_nid) if current_nid is not None else None
            head = RoomHead(extremities, snapshot, {})
            self._heads[room.room_nid] = head
        return head

    async def current_state_events(
        self, conn: DbConnection, room: RoomInfo, keys: Iterable[StateKey]
    ) -> list[Event]:
        """The room's current state events for `keys` (those that exist)."""
        head = await self.head(conn, room)
        key_nids = await self._state.key_nids(conn, keys, create=False)
        missing = [k for k in key_nids.values() if k not in head.state]
        if missing:
            found = await self._state.current_event_nids(conn, room.room_nid, missing)
            for key_nid in missing:
                head.state[key_nid] = found.get(key_nid)
        event_nids = [e for k in key_nids.values() if (e := head.state[k]) is not None]
        return list((await self._events.events_by_nids(conn, event_nids)).values())

    async def persist(self, room: RoomInfo, event: Event, *, txn: TxnRecord | None = None) -> StoredEvent:
        """Check and store `event`; raises EventRejected if the auth rules refuse it.

        The caller holds `locked(room.room_id)`.
        """
        try:
            # The position finishes after the commit, not before: a reader that
            # sees it in `current` must find the event (on PostgreSQL the commit
            # is an await, during which a sync or the push worker may read).
            with self._positions.next() as stream:
                async with self._db.write() as conn:
                    stored, new_head = await self._persist_in(conn, room, event, stream, txn)
        except BaseException:
            # Ids, snapshots and heads made inside the failed transaction no
            # longer exist (also for a repeated transaction id: state resolution
            # may have stored a snapshot before the claim found it taken).
            self._state.forget_cached()
            self._events.forget_cached()
            self._heads.pop(room.room_nid, None)
            raise
        old_head = self._heads.get(room.room_nid)  # loaded by _persist_in
        state_changed = (
            old_head is None or old_head.snapshot is None or new_head.snapshot is None
            or old_head.snapshot.snapshot_nid != new_head.snapshot.snapshot_nid
        )
        self._heads[room.room_nid] = new_head
        member = event.state_key if event.type == "m.room.member" else None
        self._notifier.notify_room_event(room.room_id, stream, member=member)
        for listener in self._listeners:
            listener(stored, state_changed)
        return stored

    @property
    def chains(self) -> bool:
        """Whether this database stores chains (`persist_chain`): PostgreSQL, one statement for all.

        On SQLite statements are not round trips, so a chain would save nothing.
        """
        return self._one_statement

    async def can_chain_now(self, room: RoomInfo) -> bool:
        """Whether `persist_chain` may take events built on each other from the room's head now.

        A room with one forward extremity and current state loaded, and event
        references by id (v3+), where this database `chains`. The caller holds
        the room's lock.
        """
        if not self._one_statement or room.room_version.event_format is EventFormat.V1:
            return False
        async with self._db.read() as conn:
            head = await self.head(conn, room)
        return head.snapshot is not None and len(head.extremities) == 1

    async def check_on_head(self, room: RoomInfo, event: Event) -> None:
        """The auth rules for an event the room's current state is the state before (EventRejected)."""
        async with self._db.read() as conn:
            auth_events = await self.current_state_events(
                conn, room, auth_types_for_event(event) | {CREATE_KEY}
            )
        try:
            check_auth_rules(event, auth_events)
        except AuthError as e:
            raise EventRejected(e.reason) from e

    async def persist_chain(
        self, room: RoomInfo, chain: Sequence[tuple[Event, TxnRecord | None]]
    ) -> list[StoredEvent] | None:
        """Store plain events each built on the one before, the first on the room's one head.

        One statement, and so one round trip, for the whole chain (see
        `EventsStore.insert_chain`): with many senders queued on one room, the
        lock is held once for all of them instead of once each. Each event has
        passed `check_on_head` (state events, relations and redactions do not
        come here: a chain leaves the room's state as it was). Returns None,
        having stored nothing, if a transaction id in the chain was already
        used; the caller then sends the events one by one (the persist path
        answers those with the earlier event). The caller holds the room's lock.
        """
        head = self._heads[room.room_nid]
        assert head.snapshot is not None and len(head.extremities) == 1
        snapshot_nid = head.snapshot.snapshot_nid
        try:
            with ExitStack() as positions:
                streams = [positions.enter_context(self._positions.next()) for _ in chain]
                async with self._db.write() as conn:
                    nids = await self._events.insert_chain(
                        conn, [(event, None if txn is None else txn.key) for event, txn in chain],
                        room_nid=room.room_nid, streams=streams, state_nid=snapshot_nid,
                        old_head_nid=head.extremities[0].event_nid,
                    )
        except IntegrityError:
            # A transaction id claimed meanwhile, or twice in this chain: nothing was stored.
            nids = None
        except BaseException:
            self._state.forget_cached()
            self._events.forget_cached()
            self._heads.pop(room.room_nid, None)
            raise
        if nids is None:
            return None
        stored = [
            StoredEvent(event, nids[event.event_id], room.room_nid, stream, snapshot_nid, snapshot_nid,
                        None, None, False)
            for (event, _txn), stream in zip(chain, streams, strict=True)
        ]
        last = stored[-1]
        new_head = Extremity(last.event_nid, last.event_id, last.event.depth, snapshot_nid)
        self._heads[room.room_nid] = RoomHead([new_head], head.snapshot, head.state)
        for one in stored:
            self._notifier.notify_room_event(room.room_id, one.stream_ordering or 0, member=None)
            for listener in self._listeners:
                listener(one, False)
        return stored

    async def _persist_in(
        self, conn: DbConnection, room: RoomInfo, event: Event, stream: int, txn: TxnRecord | None
    ) -> tuple[StoredEvent, RoomHead]:
        head = await self.head(conn, room)
        extremities = head.extremities
        current = head.snapshot
        before = await self._state_before(conn, room, event, head)
        is_current = (
            before is not None and current is not None and before.snapshot_nid == current.snapshot_nid
        )
        if is_current:
            auth_events = await self.current_state_events(
                conn, room, auth_types_for_event(event) | {CREATE_KEY}
            )
        else:
            auth_events = await self._auth_events_in(conn, event, before)
        try:
            check_auth_rules(event, auth_events)
        except AuthError as e:
            # A retried send is answered with its first event, even if the
            # room has changed since so that the rebuilt one is refused.
            earlier = await self._rooms.event_for_txn(conn, txn.key) if txn is not None else None
            if earlier is not None:
                raise DuplicateTxn(earlier) from None
            raise EventRejected(e.reason) from e

        prev_ids = set(event.prev_event_ids)
        replaced = [x.event_nid for x in extremities if x.event_id in prev_ids]
        remaining = [x for x in extremities if x.event_id not in prev_ids]
        before_nid = before.snapshot_nid if before else None
        if (
            self._one_statement and before_nid is not None and len(replaced) == 1
            and not event.is_state() and relation_of(event) is None
        ):
            inserted = await self._events.insert_on_head(
                conn, event, room_nid=room.room_nid, stream_ordering=stream, state_nid=before_nid,
                old_head_nid=replaced[0], txn=None if txn is None else txn.key,
                # Nothing below writes for it unless state moves, forks merge or it redacts.
                alone=is_current and not remaining and event.type != "m.room.redaction",
            )
            if inserted is None:
                assert txn is not None  # only a claimed transaction id stops the insert
                earlier = await self._rooms.event_for_txn(conn, txn.key)
                assert earlier is not None
                raise DuplicateTxn(earlier)
            event_nid = inserted
        else:
            if txn is not None:
                earlier = await self._rooms.claim_txn(conn, txn.key, event.event_id, event.origin_server_ts)
                if earlier is not None:
                    raise DuplicateTxn(earlier)
            event_nid = await self._events.insert(
                conn,
                event,
                room_nid=room.room_nid,
                stream_ordering=stream,
                state_before_nid=before_nid,
                state_after_nid=None if event.is_state() else before_nid,
            )
            await self._rooms.replace_extremities(conn, room.room_nid, replaced, event_nid)
        after = before
        if event.is_state():
            key_nid = (await self._state.key_nids(conn, [event.state_tuple], create=True))[event.state_tuple]
            if before is None:
                after = await self._state.store_full(conn, room.room_nid, {key_nid: event_nid})
            else:
                after = await self._state.store_delta(conn, room.room_nid, before, {key_nid: event_nid})
            await self._events.set_state_after(conn, event_nid, after.snapshot_nid)
        assert after is not None, "only the create event has no state before it"

        if remaining:
            new_current = await self._resolve_current(
                conn, room, [after.snapshot_nid, *(x.state_after_nid for x in remaining if x.state_after_nid)]
            )
        else:
            new_current = after
        state_cache = dict(head.state)
        await self._move_current_state(conn, room, current, new_current, stream, state_cache)

        if event.type == "m.room.redaction":
            await self._apply_redaction(conn, room, event, auth_events)
        stored = StoredEvent(
            event, event_nid, room.room_nid, stream, before_nid, after.snapshot_nid, None, None, False
        )
        new_extremities = sorted(
            [*remaining, Extremity(event_nid, event.event_id, event.depth, after.snapshot_nid)],
            key=lambda x: (-x.depth, -x.event_nid),
        )
        return stored, RoomHead(new_extremities, new_current, state_cache)

    async def _state_before(
        self, conn: DbConnection, room: RoomInfo, event: Event, head: RoomHead
    ) -> SnapshotInfo | None:
        prev_ids = event.prev_event_ids
        if not prev_ids:
            return None
        if head.snapshot is not None and set(prev_ids) == {x.event_id for x in head.extremities}:
            return head.snapshot
        prevs = await self._events.by_ids(conn, prev_ids)
        missing = [p for p in prev_ids if p not in prevs or prevs[p].state_after_nid is None]
        if missing:
            raise EventRejected(f"prev_events not known here: {', '.join(missing)}")
        snapshot_nids = {prevs[p].state_after_nid for p in prev_ids}
        if len(snapshot_nids) == 1:
            return await self._state.snapshot_info(conn, snapshot_nids.pop())  # type: ignore[arg-type]
        return await self._resolve_snapshots(conn, room, [n for n in snapshot_nids if n is not None])

    async def _resolve_current(
        self, conn: DbConnection, room: RoomInfo, snapshot_nids: list[int]
    ) -> SnapshotInfo:
        unique = list(dict.fromkeys(snapshot_nids))
        if len(unique) == 1:
            return await self._state.snapshot_info(conn, unique[0])
        return await self._resolve_snapshots(conn, room, unique)

    async def _resolve_snapshots(
        self, conn: DbConnection, room: RoomInfo, snapshot_nids: list[int]
    ) -> SnapshotInfo:
        """State resolution over several snapshots, stored as a new full snapshot."""
        maps = [await self._state.load(conn, nid) for nid in snapshot_nids]
        all_event_nids = {e for m in maps for e in m.values()}
        by_nid = await self._events.by_nids(conn, all_event_nids)
        keys = await self._state.keys_for_nids(conn, {k for m in maps for k in m})
        state_sets = [{keys[k]: by_nid[e].event_id for k, e in m.items()} for m in maps]
        chain = await self._events.auth_chain(conn, [s.event_id for s in by_nid.values()])
        event_map = {eid: s.event for eid, s in chain.items()}
        rejected = {eid for eid, s in chain.items() if s.rejected_reason is not None}
        resolved = resolve_state(room.room_version, state_sets, event_map, rejected_event_ids=rejected)
        key_nids = await self._state.key_nids(conn, resolved.keys(), create=True)
        full = {key_nids[k]: chain[eid].event_nid for k, eid in resolved.items()}
        return await self._state.store_full(conn, room.room_nid, full)

    async def _auth_events_in(
        self, conn: DbConnection, event: Event, before: SnapshotInfo | None
    ) -> list[Event]:
        """The auth events for `event` from a snapshot that is not the current state."""
        if before is None:
            return []
        key_nids = await self._state.key_nids(conn, auth_types_for_event(event) | {CREATE_KEY}, create=False)
        full = await self._state.load(conn, before.snapshot_nid)
        chosen = [full[k] for k in key_nids.values() if k in full]
        return list((await self._events.events_by_nids(conn, chosen)).values())

    async def _move_current_state(
        self,
        conn: DbConnection,
        room: RoomInfo,
        old: SnapshotInfo | None,
        new: SnapshotInfo,
        stream: int,
        state_cache: dict[int, int | None],
    ) -> None:
        """Point current state at `new`, writing only the entries that changed."""
        if old is not None and old.snapshot_nid == new.snapshot_nid:
            return
        new_map = await self._state.load(conn, new.snapshot_nid)
        old_map = await self._state.load(conn, old.snapshot_nid) if old is not None else {}
        changed = {k: v for k, v in new_map.items() if old_map.get(k) != v}
        removed = [k for k in old_map if k not in new_map]
        await self._state.apply_current_delta(conn, room.room_nid, changed, removed)
        await self._rooms.set_current_snapshot(conn, room.room_nid, new.snapshot_nid)
        state_cache.update(changed)
        for key_nid in removed:
            state_cache[key_nid] = None
        if not changed:
            return
        keys = await self._state.keys_for_nids(conn, changed)
        member_nids = {k: e for k, e in changed.items() if keys[k][0] == "m.room.member"}
        if member_nids:
            members = await self._events.events_by_nids(conn, member_nids.values())
            for key_nid, event_nid in member_nids.items():
                membership = members[event_nid].membership or "leave"
                await self._rooms.set_membership(
                    conn, room.room_nid, keys[key_nid][1], membership, event_nid, stream
                )

    async def _apply_redaction(
        self, conn: DbConnection, room: RoomInfo, redaction: Event, auth_events: list[Event]
    ) -> None:
        """Mark the target redacted if the redaction may apply to it (v3+ checks at this point)."""
        target_id = redaction.redacts
        if target_id is None:
            return
        target = (await self._events.by_ids(conn, [target_id])).get(target_id)
        if target is None or target.room_nid != room.room_nid:
            return
        if _domain(target.event.sender) != _domain(redaction.sender):
            state = {e.state_tuple: e for e in auth_events}
            power = PowerLevels(state.get(CREATE_KEY), state.get(POWER_LEVELS_KEY))
            if power.user_level(redaction.sender) < power.level("redact"):
                return
        await self._events.set_redacted_by(conn, target_id, redaction.event_id)


def _domain(user_id: str) -> str:
    return user_id.partition(":")[2]
