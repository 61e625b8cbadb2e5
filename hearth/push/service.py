"""Notifications: push actions for every new event for every local member, and unread counts.

How it runs. The persister hands each committed event to the push service's
listener, which keeps it in memory and wakes the worker task. A client's send
answers only once the worker has processed its event (`settled`, the
persister's settler, awaited outside the room's lock), so notifications and
counts exist when the sender hears back, while the events of concurrent sends
still share batches. The worker walks the event stream in order from
its durable position ("push_actions" in `stream_counters`) up to the
persister's `current` position, in batches, each one write transaction: the
batch's events (from memory when every one of them was handed over, else read
back), their rooms' joined members and the current state the rules look at
(both cached per room until the room's current state changes), the members'
rulesets, read positions and counts (all cached); then pure rule evaluation;
then the notifications, the new counts and the new position are stored
together. After it commits, pushes go to the pusher service.

Why counts are right when a sync reads them: /sync calls `caught_up(upto)`
before reading counts, which returns at once if the worker is past `upto` and
otherwise processes up to it right there (under the same lock the worker
uses). So the count for an event is in the same /sync response as the event,
as the spec requires, whether or not the worker got there first. The
position is durable, so after a crash the events not yet processed are
processed on start. Counts and read positions are cached per (user, room):
every write of either happens here, under one lock, and puts its result in the
cache once committed, so neither a woken long-poll nor the next batch reads
them from the database.

Who is evaluated for an event: local users joined to the room since before
the event (their join's stream position is lower), except the sender; and a
local user invited by the event (for `.m.rule.invite_for_me`, which pushes;
invites do not count as unread, the user is not in the room yet). Member
count and power levels are the room's current ones.

Counts are per (user, room, thread): "main" or a thread root, found by
following relations up to 3 hops as the spec recommends. A notification
counts while it is after the user's read position: the larger of the
unthreaded one and the one for its thread. Read positions move with m.read
and m.read.private receipts (`mark_read`, called by the receipts service)
and with the user's own events: sending in the main timeline reads the whole
room up to that event, sending in a thread reads the thread (a reply shows
the user saw what came before). Moving a read position recounts from the
stored notifications after it. Leaving a room drops its counts.

Decisions where the spec is silent: `counts.unread` in pushes is the sum of
the user's unread notification counts over all rooms; `prio` is high for
encrypted events and for those with a sound or highlight tweak, else low.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from hearth.clock import Clock
from hearth.core.events import Event, StateKey
from hearth.core.power_levels import PowerLevels
from hearth.push.evaluator import Outcome, RoomFacts, evaluate_for
from hearth.push.pusher import PusherService, PushNotification
from hearth.push.rules import Ruleset
from hearth.push.rules_service import PUSH_RULES_TYPE, PushRulesService
from hearth.rooms.persist import EventPersister
from hearth.storage.db import Database, DbConnection
from hearth.storage.events import EventsStore, StoredEvent, relation_of
from hearth.storage.positions import PositionTracker
from hearth.storage.push import MAIN, UNTHREADED, ActionRow, Counts, CountsWrite, PushStore
from hearth.storage.rooms import RoomsStore
from hearth.storage.state import StateStore
from hearth.sync.streams import SyncContext

log = logging.getLogger(__name__)

BATCH_SIZE = 200
# Handed-over events kept for the worker; past this (the worker is not
# running: a CLI command, a test) the oldest go and batches read them back.
RECENT_LIMIT = 10_000
# Rooms whose members and state are cached.
ROOM_CACHE_SIZE = 2_000
# (user, room) pairs whose unread counts are cached.
COUNTS_CACHE_SIZE = 50_000
THREAD_HOPS = 3
_CREATE: StateKey = ("m.room.create", "")
_POWER_LEVELS: StateKey = ("m.room.power_levels", "")
_NAME: StateKey = ("m.room.name", "")
_CANONICAL_ALIAS: StateKey = ("m.room.canonical_alias", "")
V = TypeVar("V")


@dataclass
class _UserRoom:
    """One user's read positions and counts in one room while a batch is worked out."""

    reads: dict[str, int]
    counts: dict[str, list[int]]
    replace_all: bool = False
    touched: bool = False
    new_reads: dict[str, int] = field(default_factory=dict)

    def read_up_to(self, thread_id: str) -> int:
        return max(self.reads.get(UNTHREADED, 0), self.reads.get(thread_id, 0))

    def read(self, thread_id: str, stream: int) -> None:
        """The user read `thread_id` ("" for the whole room) up to `stream`."""
        if self.reads.get(thread_id, 0) >= stream:
            return
        self.reads[thread_id] = stream
        self.new_reads[thread_id] = stream
        self.touched = True
        if thread_id == UNTHREADED:
            self.counts.clear()
            self.replace_all = True
        else:
            self.counts[thread_id] = [0, 0]

    def read_if_unread(self, thread_id: str, stream: int) -> None:
        """The user's own event at `stream`: main-timeline events read the room, thread events the thread."""
        if thread_id == MAIN:
            if any(n or h for n, h in self.counts.values()):
                self.read(UNTHREADED, stream)
        elif any(self.counts.get(thread_id, ())):
            self.read(thread_id, stream)


@dataclass(slots=True)
class _RoomCache:
    """A room's joined members and the current state events looked up so far (None: absent)."""

    members: dict[str, int] | None = None
    state: dict[StateKey, Event | None] = field(default_factory=dict)


class _Pending(NamedTuple):
    user_id: str
    stored: StoredEvent
    outcome: Outcome


class PushService:
    def __init__(
        self,
        *,
        db: Database,
        store: PushStore,
        events: EventsStore,
        rooms: RoomsStore,
        state: StateStore,
        rules: PushRulesService,
        pushers: PusherService,
        positions: PositionTracker,
        persister: EventPersister,
        clock: Clock,
        server_name: str,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._db = db
        self._store = store
        self._events = events
        self._rooms = rooms
        self._state = state
        self._rules = rules
        self._pushers = pushers
        self._positions = positions
        self._clock = clock
        self._suffix = ":" + server_name
        self._batch_size = batch_size
        self._processed: int | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._starts = 0
        self._room_ids: OrderedDict[int, str] = OrderedDict()
        self._recent: dict[int, StoredEvent] = {}  # stream ordering -> event, in stream order
        # stream ordering -> when the event was handed over: a notification's
        # `ts`, so it does not depend on when the worker got to it.
        self._received_at: dict[int, int] = {}
        self._rooms_cache: OrderedDict[int, _RoomCache] = OrderedDict()
        # Bumped whenever a room's current state changes: a cache fill that
        # read the database before the change must not be kept after it.
        self._state_generation = 0
        # (user, room nid) -> thread -> counts (only unread ones), as stored.
        # Every count write (under `_lock`) puts its result here after commit
        # and bumps the generation, so a fill that read before it is dropped.
        self._counts: OrderedDict[tuple[str, int], dict[str, Counts]] = OrderedDict()
        self._counts_generation = 0
        # (user, room nid) -> thread -> read position, as stored; only read and
        # written under `_lock` (so no generation is needed).
        self._reads: OrderedDict[tuple[str, int], dict[str, int]] = OrderedDict()
        persister.add_persisted_listener(self._on_persisted)
        self._settle_waiters: list[tuple[int, asyncio.Future[None]]] = []
        persister.add_settler(self.settled)

    # --- lifecycle ----------------------------------------------------------------

    def _on_persisted(self, stored: StoredEvent, state_changed: bool) -> None:
        if stored.stream_ordering is not None:
            self._recent[stored.stream_ordering] = stored
            self._received_at[stored.stream_ordering] = self._clock.time_ms()
            if len(self._recent) > RECENT_LIMIT:
                oldest = next(iter(self._recent))
                del self._recent[oldest], self._received_at[oldest]
        if state_changed:
            self._state_generation += 1
            self._rooms_cache.pop(stored.room_nid, None)
        self._wake.set()

    async def start(self) -> None:
        """Start the worker and pusher delivery (idempotent: each start needs a stop)."""
        self._starts += 1
        if self._starts > 1:
            return
        await self._pushers.start()
        self._wake.set()  # catch up on anything persisted while we were stopped
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._starts = max(0, self._starts - 1)
        if self._starts:
            return
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._pushers.stop()

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                try:
                    await self.catch_up()
                    # A waiter for a position already processed (at start, where
                    # the stored position is read first) has no batch to release it.
                    self._release_settled(self._processed)
                except Exception:
                    log.exception("Computing push actions failed; will retry on the next event")
                    self._release_settled(None)  # a sender must not wait for a retry
        finally:
            self._release_settled(None)

    async def settled(self, position: int) -> None:
        """Wait until the worker has processed `position` (the persister's settler).

        The worker does the work, so the events of concurrent sends are still
        processed in shared batches; without a running worker (a CLI command,
        some tests) the caller processes them itself.
        """
        if self._processed is not None and self._processed >= position:
            return
        if self._task is None or self._task.done():
            await self.caught_up(position)
            return
        waiter = asyncio.get_running_loop().create_future()
        self._settle_waiters.append((position, waiter))
        self._wake.set()
        await waiter

    def _release_settled(self, upto: int | None) -> None:
        """Wake the senders waiting for positions up to `upto` (None: all of them)."""
        waiting = []
        for position, waiter in self._settle_waiters:
            if upto is None or position <= upto:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((position, waiter))
        self._settle_waiters = waiting

    # --- processing -----------------------------------------------------------------

    async def caught_up(self, position: int) -> None:
        """Make sure every event up to `position` has been processed (cheap when it has)."""
        if self._processed is not None and self._processed >= position:
            return
        try:
            await self.catch_up()
        except Exception:
            log.exception("Computing push actions failed; counts may lag")

    async def catch_up(self) -> None:
        """Process every event persisted so far."""
        target = self._positions.current
        async with self._lock:
            if self._processed is None:
                async with self._db.read() as conn:
                    stored = await self._store.processed_position(conn)
                self._processed = target if stored is None else stored
            while self._processed < target:
                await self._process_batch(self._processed, target)

    async def _process_batch(self, after: int, target: int) -> None:
        pending: list[_Pending] = []
        rows: list[ActionRow] = []
        states: dict[tuple[str, int], _UserRoom] = {}
        now = self._clock.time_ms()
        async with self._db.write() as conn:
            new_position, events = await self._batch_events(conn, after, target)
            batch = [s for s in events if s.rejected_reason is None and not s.outlier]
            by_room: dict[int, list[StoredEvent]] = {}
            for stored in batch:
                by_room.setdefault(stored.room_nid, []).append(stored)
            members = await self._joined_members(conn, by_room.keys())
            threads = await self._threads(conn, batch)
            for room_nid, room_events in by_room.items():
                await self._room_batch(conn, room_nid, room_events, members[room_nid], threads,
                                       now, states, rows, pending)
            touched = [(key, st) for key, st in states.items() if st.touched]
            await self._store.write_batch(conn, rows, [
                (user_id, room_nid, thread_id, stream)
                for (user_id, room_nid), st in touched for thread_id, stream in st.new_reads.items()
            ], [
                CountsWrite(room_nid, user_id, {t: Counts(n, h) for t, (n, h) in st.counts.items()},
                            st.replace_all)
                for (user_id, room_nid), st in touched
            ], new_position)
        self._processed = new_position
        if self._settle_waiters:
            self._release_settled(new_position)
        self._counts_generation += 1
        for (user_id, room_nid), st in touched:
            self._remember_counts(user_id, room_nid, {t: Counts(n, h) for t, (n, h) in st.counts.items()})
            reads = self._reads.get((user_id, room_nid))
            if reads is not None:
                reads.update(st.new_reads)
        for stream in [s for s in self._recent if s <= new_position]:
            del self._recent[stream], self._received_at[stream]
        if pending:
            await self._push(pending)

    async def _batch_events(self, conn: DbConnection, after: int, target: int
                            ) -> tuple[int, list[StoredEvent]]:
        """The next batch after `after` (at most `target`): its end position and events, in order.

        Every position is taken by one event unless its persist failed, so
        when each position of the batch was handed over the events are all in
        memory; a gap (a failed persist, or events persisted before this
        process started) reads the batch from the database instead.
        """
        end = min(target, after + self._batch_size)
        recent = [self._recent.get(s) for s in range(after + 1, end + 1)]
        if all(s is not None for s in recent):
            return end, [s for s in recent if s is not None]
        pairs = await self._store.event_nids_between(conn, after, target, self._batch_size)
        new_position = pairs[-1][1] if len(pairs) == self._batch_size else target
        found = await self._events.by_nids(conn, [nid for nid, _ in pairs])
        return new_position, [found[nid] for nid, _ in pairs if nid in found]

    async def _stored_counts(self, conn: DbConnection, room_nid: int, user_ids: Iterable[str]
                             ) -> dict[tuple[str, str], Counts]:
        """(user, thread) -> the users' stored unread counts in the room, cached per (user, room).

        Called under `_lock`, which every count write holds, so what the
        database returns is what the cache would: it is remembered.
        """
        return await _per_user_cached(self._counts, room_nid, user_ids, self._remember_counts,
                                      lambda missing: self._store.counts_in_room(conn, room_nid, missing))

    async def _stored_reads(self, conn: DbConnection, room_nid: int, user_ids: Iterable[str]
                            ) -> dict[tuple[str, str], int]:
        """(user, thread) -> the users' stored read positions in the room; cached like `_stored_counts`."""
        return await _per_user_cached(self._reads, room_nid, user_ids, self._remember_reads,
                                      lambda missing: self._store.read_positions(conn, room_nid, missing))

    def _remember_reads(self, user_id: str, room_nid: int, reads: Mapping[str, int]) -> None:
        self._reads[(user_id, room_nid)] = dict(reads)
        self._reads.move_to_end((user_id, room_nid))
        if len(self._reads) > COUNTS_CACHE_SIZE:
            self._reads.popitem(last=False)

    def _remember_counts(self, user_id: str, room_nid: int, counts: Mapping[str, Counts]) -> None:
        unread = {t: c for t, c in counts.items() if c.notifications or c.highlights}
        self._counts[(user_id, room_nid)] = unread
        self._counts.move_to_end((user_id, room_nid))
        if len(self._counts) > COUNTS_CACHE_SIZE:
            self._counts.popitem(last=False)

    def _room_cache(self, room_nid: int) -> _RoomCache:
        cache = self._rooms_cache.get(room_nid)
        if cache is None:
            cache = self._rooms_cache[room_nid] = _RoomCache()
            if len(self._rooms_cache) > ROOM_CACHE_SIZE:
                self._rooms_cache.popitem(last=False)
        else:
            self._rooms_cache.move_to_end(room_nid)
        return cache

    async def _joined_members(self, conn: DbConnection, room_nids: Iterable[int]
                              ) -> dict[int, dict[str, int]]:
        """room_nid -> {joined user: stream position of their join}, cached per room."""
        out: dict[int, dict[str, int]] = {}
        missing: list[int] = []
        for room_nid in room_nids:
            cached = self._rooms_cache.get(room_nid)
            if cached is not None and cached.members is not None:
                out[room_nid] = cached.members
            else:
                missing.append(room_nid)
        if missing:
            generation = self._state_generation
            found = await self._store.joined_members(conn, missing)
            for room_nid, members in found.items():
                out[room_nid] = members
                if generation == self._state_generation:
                    self._room_cache(room_nid).members = members
        return out

    def _is_local(self, user_id: str) -> bool:
        return user_id.endswith(self._suffix)

    async def _room_batch(
        self,
        conn: DbConnection,
        room_nid: int,
        room_events: list[StoredEvent],
        joined: dict[str, int],
        threads: dict[str, str],
        now: int,
        states: dict[tuple[str, int], _UserRoom],
        rows: list[ActionRow],
        pending: list[_Pending],
    ) -> None:
        """Evaluate one room's events of the batch for its local members, in stream order."""
        local = {u: pos for u, pos in joined.items() if self._is_local(u)}
        plan: list[tuple[StoredEvent, list[str]]] = []
        leavers: set[str] = set()
        for stored in room_events:
            event = stored.event
            stream = stored.stream_ordering or 0
            recipients = [u for u, joined_at in local.items() if joined_at < stream and u != event.sender]
            target = event.state_key if event.type == "m.room.member" else None
            if target is None or not self._is_local(target):
                pass
            elif event.membership == "invite" and target != event.sender and target not in local:
                recipients.append(target)
            elif event.membership in ("leave", "ban"):
                leavers.add(target)
            plan.append((stored, recipients))
        senders = {s.event.sender for s in room_events if s.event.sender in local}
        users = {u for _, recipients in plan for u in recipients}
        tracked = (set(local) & users) | senders | leavers
        if not users and not tracked:
            return
        counts = await self._stored_counts(conn, room_nid, tracked)
        # A sender with nothing unread never moves a read position: no need to read it.
        unread_senders = {u for (u, _), c in counts.items() if c.notifications or c.highlights}
        wanted = (set(local) & users) | leavers | (senders & unread_senders)
        reads = await self._stored_reads(conn, room_nid, wanted)
        for user_id in tracked:
            states[(user_id, room_nid)] = _UserRoom(reads={}, counts={})
        for (user_id, thread_id), position in reads.items():
            states[(user_id, room_nid)].reads[thread_id] = position
        for (user_id, thread_id), c in counts.items():
            states[(user_id, room_nid)].counts[thread_id] = [c.notifications, c.highlights]
        rulesets = await self._rules.rulesets(conn, users) if users else {}
        facts = await self._facts(conn, room_nid, len(joined), rulesets.values()) if users else RoomFacts()
        room_id = await self._room_id(conn, room_nid)
        for stored, recipients in plan:
            event = stored.event
            stream = stored.stream_ordering or 0
            thread_id = threads.get(stored.event_id, MAIN)
            sender_state = states.get((event.sender, room_nid))
            if sender_state is not None:
                # Sending reads what came before (only worth a write if it was unread).
                sender_state.read_if_unread(thread_id, stream)
            left = event.type == "m.room.member" and event.membership in ("leave", "ban")
            if left and event.state_key in leavers:
                # Leaving reads the room: nothing before it counts again on a rejoin.
                states[(event.state_key, room_nid)].read(UNTHREADED, stream)
            if not recipients:
                continue
            view = {**event.pdu, "room_id": room_id, "event_id": stored.event_id}
            memo: dict[Any, Any] = {}
            for user_id in recipients:
                outcome = evaluate_for(rulesets[user_id], view, facts, memo)
                if outcome is None or not outcome.notify:
                    continue
                rows.append(ActionRow(user_id, stored.event_nid, room_nid, stream, thread_id,
                                      outcome.actions, outcome.highlight, self._received_at.get(stream, now)))
                pending.append(_Pending(user_id, stored, outcome))
                st = states.get((user_id, room_nid))
                if st is None or user_id not in local or stream <= st.read_up_to(thread_id):
                    continue
                entry = st.counts.setdefault(thread_id, [0, 0])
                entry[0] += 1
                entry[1] += 1 if outcome.highlight else 0
                st.touched = True

    async def _room_id(self, conn: DbConnection, room_nid: int) -> str:
        room_id = self._room_ids.get(room_nid)
        if room_id is None:
            room_id = await self._store.room_id(conn, room_nid)
            self._room_ids[room_nid] = room_id
            if len(self._room_ids) > 10_000:
                self._room_ids.popitem(last=False)
        return room_id

    async def _current_state(self, conn: DbConnection, room_nid: int, keys: Sequence[StateKey]
                             ) -> dict[StateKey, Event]:
        """The room's current state events for `keys` (those that exist), cached per room."""
        cached = self._rooms_cache.get(room_nid)
        known = cached.state if cached is not None else {}
        out = {k: e for k in keys if (e := known.get(k)) is not None}
        missing = [k for k in keys if k not in known]
        if not missing:
            return out
        generation = self._state_generation
        key_nids = await self._state.key_nids(conn, missing, create=False)
        current = await self._state.current_event_nids(conn, room_nid, key_nids.values()) if key_nids else {}
        found = await self._events.events_by_nids(conn, current.values())
        by_key_nid = {nid: key for key, nid in key_nids.items()}
        fetched: dict[StateKey, Event | None] = dict.fromkeys(missing)
        for key_nid, event_nid in current.items():
            fetched[by_key_nid[key_nid]] = found.get(event_nid)
        if generation == self._state_generation:
            self._room_cache(room_nid).state.update(fetched)
        return {**out, **{k: e for k, e in fetched.items() if e is not None}}

    async def _facts(self, conn: DbConnection, room_nid: int, member_count: int, rulesets: Iterable[Ruleset]
                     ) -> RoomFacts:
        """Member count, power levels and (only if some rule asks) display names."""
        # Owner-bound rules are the ones with a contains_display_name condition.
        wants_names = [
            r.user_id for r in rulesets if any(rule.enabled and rule.match_key is None for rule in r)
        ]
        keys: list[StateKey] = [_CREATE, _POWER_LEVELS, *(("m.room.member", u) for u in wants_names)]
        state = await self._current_state(conn, room_nid, keys)
        names = {}
        for user_id in wants_names:
            member = state.get(("m.room.member", user_id))
            name = member.content.get("displayname") if member is not None else None
            if isinstance(name, str) and name:
                names[user_id] = name
        return RoomFacts(
            member_count=member_count,
            power_levels=PowerLevels(state.get(_CREATE), state.get(_POWER_LEVELS)),
            display_names=names,
        )

    async def _threads(self, conn: DbConnection, batch: Sequence[StoredEvent]) -> dict[str, str]:
        """event_id -> thread root for events in a thread (others are in the main timeline)."""
        out: dict[str, str] = {}
        # event_id -> the event whose relation we follow next
        chasing: dict[str, str] = {}
        for stored in batch:
            rel = relation_of(stored.event)
            if rel is None:
                continue
            parent, rel_type, _ = rel
            if rel_type == "m.thread":
                out[stored.event_id] = parent
            else:
                chasing[stored.event_id] = parent
        for _ in range(THREAD_HOPS - 1):
            if not chasing:
                break
            links = await self._store.relations_of(conn, set(chasing.values()))
            following: dict[str, str] = {}
            for event_id, parent in chasing.items():
                link = links.get(parent)
                if link is None:
                    continue
                rel_type, grandparent = link
                if rel_type == "m.thread":
                    out[event_id] = grandparent
                else:
                    following[event_id] = grandparent
            chasing = following
        return out

    # --- pushes ---------------------------------------------------------------------

    async def _push(self, pending: list[_Pending]) -> None:
        """Hand the batch's notifications to the pusher service (only users with HTTP pushers)."""
        await self._pushers.ensure_loaded()
        wanted = [p for p in pending if self._pushers.has_http_pushers(p.user_id)]
        if not wanted:
            return
        async with self._db.read() as conn:
            unread = {u: await self._store.total_unread(conn, u) for u in {p.user_id for p in wanted}}
            names: dict[int, str | None] = {}
            senders: dict[tuple[int, str], str | None] = {}
            for p in wanted:
                room_nid, sender = p.stored.room_nid, p.stored.event.sender
                if room_nid not in names or (room_nid, sender) not in senders:
                    state = await self._current_state(
                        conn, room_nid, [_NAME, _CANONICAL_ALIAS, ("m.room.member", sender)]
                    )
                    names[room_nid] = _room_name(state)
                    member = state.get(("m.room.member", sender))
                    display = member.content.get("displayname") if member is not None else None
                    senders[(room_nid, sender)] = display if isinstance(display, str) else None
            room_ids = {p.stored.room_nid: await self._room_id(conn, p.stored.room_nid) for p in wanted}
        for p in wanted:
            event = p.stored.event
            tweaks = p.outcome.tweaks
            high = event.type == "m.room.encrypted" or bool(tweaks.get("sound")) or p.outcome.highlight
            self._pushers.enqueue(PushNotification(
                user_id=p.user_id,
                unread=unread[p.user_id],
                event_id=p.stored.event_id,
                room_id=room_ids[p.stored.room_nid],
                type=event.type,
                sender=event.sender,
                content=event.content,
                sender_display_name=senders.get((p.stored.room_nid, event.sender)),
                room_name=names.get(p.stored.room_nid),
                user_is_target=event.type == "m.room.member" and event.state_key == p.user_id,
                tweaks=dict(tweaks),
                prio="high" if high else "low",
            ))

    # --- read positions -------------------------------------------------------------

    async def mark_read(self, user_id: str, room_id: str, event_id: str, thread_id: str | None = None
                        ) -> None:
        """A read receipt (m.read or m.read.private) moved: recount the user's unread notifications.

        `thread_id` None is an unthreaded receipt (the whole room up to the
        event); otherwise "main" or a thread root. A receipt behind the user's
        current position changes nothing (the most advanced receipt counts).
        """
        room = await self._rooms.get(room_id)
        if room is None:
            return
        key = UNTHREADED if thread_id is None else thread_id
        changed = False
        async with self._lock, self._db.write() as conn:
            stored = (await self._events.by_ids(conn, [event_id])).get(event_id)
            if stored is None or stored.room_nid != room.room_nid or not stored.stream_ordering:
                return
            stream = stored.stream_ordering
            reads = {t: p for (_, t), p in (await self._stored_reads(conn, room.room_nid, [user_id])).items()}
            if reads.get(key, 0) >= stream:
                return
            reads[key] = stream
            await self._store.set_read_positions(conn, [(user_id, room.room_nid, key, stream)])
            before = (await self._store.unread_counts(conn, user_id, [room.room_nid])).get(
                room.room_nid, {})
            after = await self._store.recount(conn, user_id, room.room_nid, reads)
            await self._store.write_counts(conn, [CountsWrite(room.room_nid, user_id, after, True)])
            changed = before != after
        self._counts_generation += 1
        self._remember_counts(user_id, room.room_nid, after)
        self._remember_reads(user_id, room.room_nid, reads)
        if changed:
            await self._badge(user_id)

    async def _badge(self, user_id: str) -> None:
        """Tell the user's gateways the new unread count (no event)."""
        await self._pushers.ensure_loaded()
        if not self._pushers.has_http_pushers(user_id):
            return
        async with self._db.read() as conn:
            unread = await self._store.total_unread(conn, user_id)
        self._pushers.enqueue(PushNotification(user_id=user_id, unread=unread))

    # --- reading counts ---------------------------------------------------------------

    async def unread_counts(self, user_id: str, room_ids: Sequence[str], upto: int
                            ) -> dict[str, dict[str, Counts]]:
        """room_id -> thread -> counts for rooms with unread notifications, once `upto` is processed."""
        await self.caught_up(upto)
        nids: dict[int, str] = {}
        for room_id in room_ids:
            room = await self._rooms.get(room_id)
            if room is not None:
                nids[room.room_nid] = room_id
        found: dict[int, dict[str, Counts]] = {}
        missing: list[int] = []
        for room_nid in nids:
            cached = self._counts.get((user_id, room_nid))
            if cached is None:
                missing.append(room_nid)
            elif cached:
                found[room_nid] = cached
        if missing:
            generation = self._counts_generation
            async with self._db.read() as conn:
                stored = await self._store.unread_counts(conn, user_id, missing)
            found.update(stored)
            if generation == self._counts_generation:
                for room_nid in missing:
                    self._remember_counts(user_id, room_nid, stored.get(room_nid, {}))
        return {nids[r]: threads for r, threads in found.items()}

    async def sync_hook(self, ctx: SyncContext, response: dict[str, Any]) -> None:
        """Add unread counts to the joined rooms of a /sync response (one query for all of them).

        On an initial sync, also the `m.push_rules` account data, which exists
        for every user whether or not they ever changed a rule.
        """
        user_id = ctx.requester.user_id
        if ctx.since is None:
            events = response.setdefault("account_data", {}).setdefault("events", [])
            if not any(e.get("type") == PUSH_RULES_TYPE for e in events):
                ruleset = await self._rules.ruleset(user_id)
                events.append({"type": PUSH_RULES_TYPE,
                               "content": self._rules.account_data_content(ruleset)})
        join = response.get("rooms", {}).get("join")
        if not join:
            return
        counts = await self.unread_counts(user_id, list(join), ctx.upto.events)
        timeline = ctx.flt.room.timeline if ctx.flt.room else None
        per_thread = bool(timeline and timeline.unread_thread_notifications)
        for room_id, entry in join.items():
            threads = counts.get(room_id, {})
            if per_thread:
                main = threads.get(MAIN, Counts(0, 0))
                entry["unread_notifications"] = _counts_json(main)
                others = {t: _counts_json(c) for t, c in threads.items() if t != MAIN}
                if others:
                    entry["unread_thread_notifications"] = others
            else:
                total = Counts(sum(c.notifications for c in threads.values()),
                               sum(c.highlights for c in threads.values()))
                entry["unread_notifications"] = _counts_json(total)

    async def notifications(self, user_id: str, *, before: int | None, limit: int, only_highlight: bool
                            ) -> tuple[list[tuple[ActionRow, StoredEvent, bool]], int | None]:
        """The user's notifications, newest first: (row, event, read?) and the next `from` position."""
        await self.caught_up(self._positions.current)
        async with self._db.read() as conn:
            rows = await self._store.notifications(conn, user_id, before=before, limit=limit,
                                                   only_highlight=only_highlight)
            found = await self._events.by_nids(conn, [r.event_nid for r in rows])
            reads = await self._store.user_read_positions(conn, user_id, {r.room_nid for r in rows})
        out = []
        for row in rows:
            stored = found.get(row.event_nid)
            if stored is None:
                continue
            read_to = max(reads.get((row.room_nid, UNTHREADED), 0),
                          reads.get((row.room_nid, row.thread_id), 0))
            out.append((row, stored, row.stream_ordering <= read_to))
        next_from = rows[-1].stream_ordering if len(rows) == limit else None
        return out, next_from


async def _per_user_cached(
    cache: Mapping[tuple[str, int], Mapping[str, V]],
    room_nid: int,
    user_ids: Iterable[str],
    remember: Callable[[str, int, dict[str, V]], None],
    fetch: Callable[[list[str]], Awaitable[dict[tuple[str, str], V]]],
) -> dict[tuple[str, str], V]:
    """(user, thread) -> value in one room: cached users from `cache`, the rest fetched and remembered."""
    out: dict[tuple[str, str], V] = {}
    missing: list[str] = []
    for user_id in user_ids:
        cached = cache.get((user_id, room_nid))
        if cached is None:
            missing.append(user_id)
        else:
            out.update(((user_id, t), v) for t, v in cached.items())
    if missing:
        found = await fetch(missing)
        out.update(found)
        by_user: dict[str, dict[str, V]] = {u: {} for u in missing}
        for (user_id, thread_id), value in found.items():
            by_user[user_id][thread_id] = value
        for user_id, values in by_user.items():
            remember(user_id, room_nid, values)
    return out


def _counts_json(c: Counts) -> dict[str, int]:
    return {"notification_count": c.notifications, "highlight_count": c.highlights}


def _room_name(state: Mapping[StateKey, Event]) -> str | None:
    for key, field_name in ((_NAME, "name"), (_CANONICAL_ALIAS, "alias")):
        event = state.get(key)
        value = event.content.get(field_name) if event is not None else None
        if isinstance(value, str) and value:
            return value
    return None
