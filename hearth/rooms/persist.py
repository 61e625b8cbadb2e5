"""The single path by which any event joins a room's DAG.

Local sends (and, later, events from federation, backfill, invites and joins)
all end in `EventPersister.persist`, which, inside one transaction:

1. works out the state before the event from its prev_events (the room's
   current state when they are exactly the forward extremities; one parent's
   state after it; otherwise state resolution over the parents' states);
2. checks the event against the auth rules with the auth events picked from
   that state;
3. stores the event with a new stream position, and the state after it as a
   snapshot sharing structure with the state before;
4. moves the forward extremities, and updates current state and membership
   (resolving across extremities if the DAG has forked);
5. after commit, tells the notifier.

Writes to one room are serialised by a per-room lock that callers hold while
they also read the room to build an event (`locked`). Different rooms proceed
concurrently.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.core.auth import AuthError, auth_types_for_event, check_auth_rules
from hearth.core.events import Event, StateKey
from hearth.core.power_levels import PowerLevels
from hearth.core.state_res import resolve_state
from hearth.notifier import Notifier
from hearth.storage.db import Database
from hearth.storage.events import EventsStore, StoredEvent
from hearth.storage.positions import PositionTracker
from hearth.storage.rooms import Extremity, RoomInfo, RoomsStore
from hearth.storage.state import SnapshotInfo, StateNids, StateStore

CREATE_KEY: StateKey = ("m.room.create", "")
POWER_LEVELS_KEY: StateKey = ("m.room.power_levels", "")


class EventRejected(Exception):
    """The event failed the auth rules against the state before it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TxnRecord:
    """A client transaction id to remember with the event (idempotent sends)."""

    user_id: str
    device_id: str
    txn_id: str


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

    @asynccontextmanager
    async def locked(self, room_id: str) -> AsyncIterator[None]:
        """Hold the room's write lock (build-then-persist must not interleave)."""
        lock = self._locks.get(room_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[room_id] = lock
        async with lock:
            yield

    async def persist(self, room: RoomInfo, event: Event, *, txn: TxnRecord | None = None) -> StoredEvent:
        """Check and store `event`; raises EventRejected if the auth rules refuse it.

        The caller holds `locked(room.room_id)`.
        """
        try:
            async with self._db.write() as conn:
                with self._positions.next() as stream:
                    stored = await self._persist_in(conn, room, event, stream, txn)
        except BaseException:
            # Ids and snapshots made inside the failed transaction no longer exist.
            self._state.forget_cached()
            self._events.forget_cached()
            raise
        self._notifier.notify_room_event(room.room_id, stream)
        return stored

    async def _persist_in(
        self, conn: AsyncConnection, room: RoomInfo, event: Event, stream: int, txn: TxnRecord | None
    ) -> StoredEvent:
        extremities = await self._rooms.extremities(conn, room.room_nid)
        current_nid = await self._rooms.current_snapshot_nid(conn, room.room_nid)
        before = await self._state_before(conn, room, event, extremities, current_nid)

        auth_events = await self._auth_events(
            conn, room, event, before, is_current=before is not None and before.snapshot_nid == current_nid
        )
        try:
            check_auth_rules(event, auth_events)
        except AuthError as e:
            raise EventRejected(e.reason) from e

        event_nid = await self._events.insert(
            conn,
            event,
            room_nid=room.room_nid,
            stream_ordering=stream,
            state_before_nid=before.snapshot_nid if before else None,
            state_after_nid=None,
        )
        after = before
        if event.is_state():
            key_nid = (await self._state.key_nids(conn, [event.state_tuple], create=True))[event.state_tuple]
            if before is None:
                after = await self._state.store_full(conn, room.room_nid, {key_nid: event_nid})
            else:
                after = await self._state.store_delta(conn, room.room_nid, before, {key_nid: event_nid})
        assert after is not None, "only the create event has no state before it"
        await self._events.set_state_after(conn, event_nid, after.snapshot_nid)

        prev_ids = set(event.prev_event_ids)
        remaining = [x for x in extremities if x.event_id not in prev_ids]
        await self._rooms.replace_extremities(
            conn, room.room_nid, [x.event_nid for x in extremities if x.event_id in prev_ids], event_nid
        )

        if remaining:
            new_current = await self._resolve_current(
                conn, room, [after.snapshot_nid, *(x.state_after_nid for x in remaining if x.state_after_nid)]
            )
        else:
            new_current = after
        await self._move_current_state(conn, room, current_nid, new_current, stream)

        if event.type == "m.room.redaction":
            await self._apply_redaction(conn, room, event, auth_events)
        if txn is not None:
            await self._rooms.record_txn(
                conn, txn.user_id, txn.device_id, txn.txn_id, event.event_id, event.origin_server_ts
            )
        return StoredEvent(
            event,
            event_nid,
            room.room_nid,
            stream,
            before.snapshot_nid if before else None,
            after.snapshot_nid,
            None,
            None,
            False,
        )

    async def _state_before(
        self,
        conn: AsyncConnection,
        room: RoomInfo,
        event: Event,
        extremities: list[Extremity],
        current_nid: int | None,
    ) -> SnapshotInfo | None:
        prev_ids = event.prev_event_ids
        if not prev_ids:
            return None
        if current_nid is not None and set(prev_ids) == {x.event_id for x in extremities}:
            return await self._state.snapshot_info(conn, current_nid)
        prevs = await self._events.by_ids(conn, prev_ids)
        missing = [p for p in prev_ids if p not in prevs or prevs[p].state_after_nid is None]
        if missing:
            raise EventRejected(f"prev_events not known here: {', '.join(missing)}")
        snapshot_nids = {prevs[p].state_after_nid for p in prev_ids}
        if len(snapshot_nids) == 1:
            return await self._state.snapshot_info(conn, snapshot_nids.pop())  # type: ignore[arg-type]
        return await self._resolve_snapshots(conn, room, [n for n in snapshot_nids if n is not None])

    async def _resolve_current(
        self, conn: AsyncConnection, room: RoomInfo, snapshot_nids: list[int]
    ) -> SnapshotInfo:
        unique = list(dict.fromkeys(snapshot_nids))
        if len(unique) == 1:
            return await self._state.snapshot_info(conn, unique[0])
        return await self._resolve_snapshots(conn, room, unique)

    async def _resolve_snapshots(
        self, conn: AsyncConnection, room: RoomInfo, snapshot_nids: list[int]
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

    async def _auth_events(
        self,
        conn: AsyncConnection,
        room: RoomInfo,
        event: Event,
        before: SnapshotInfo | None,
        *,
        is_current: bool,
    ) -> list[Event]:
        """The events of the state before `event` that the auth rules look at."""
        if before is None:
            return []
        wanted = auth_types_for_event(event) | {CREATE_KEY}
        key_nids = await self._state.key_nids(conn, wanted, create=False)
        if is_current:
            chosen: StateNids = await self._state.current_event_nids(conn, room.room_nid, key_nids.values())
        else:
            full = await self._state.load(conn, before.snapshot_nid)
            chosen = {k: full[k] for k in key_nids.values() if k in full}
        found = await self._events.by_nids(conn, chosen.values())
        return [s.event for s in found.values()]

    async def _move_current_state(
        self, conn: AsyncConnection, room: RoomInfo, old_nid: int | None, new: SnapshotInfo, stream: int
    ) -> None:
        """Point current state at `new`, writing only the entries that changed."""
        if old_nid == new.snapshot_nid:
            return
        new_map = await self._state.load(conn, new.snapshot_nid)
        old_map = await self._state.load(conn, old_nid) if old_nid is not None else {}
        changed = {k: v for k, v in new_map.items() if old_map.get(k) != v}
        removed = [k for k in old_map if k not in new_map]
        await self._state.apply_current_delta(conn, room.room_nid, changed, removed)
        await self._rooms.set_current_snapshot(conn, room.room_nid, new.snapshot_nid)
        if not changed:
            return
        keys = await self._state.keys_for_nids(conn, changed)
        member_nids = {k: e for k, e in changed.items() if keys[k][0] == "m.room.member"}
        if member_nids:
            members = await self._events.by_nids(conn, member_nids.values())
            for key_nid, event_nid in member_nids.items():
                membership = members[event_nid].event.membership or "leave"
                await self._rooms.set_membership(
                    conn, room.room_nid, keys[key_nid][1], membership, event_nid, stream
                )

    async def _apply_redaction(
        self, conn: AsyncConnection, room: RoomInfo, redaction: Event, auth_events: list[Event]
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
