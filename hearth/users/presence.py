"""Presence (presence.md): online, unavailable or offline, a status message, last activity.

What a user's presence is, at any moment, follows from what they set and
from time (`effective`):
- what they set: PUT /presence (any state, with a status message), a sync's
  `set_presence` (online by default: a syncing user who was offline comes
  online; `unavailable` marks them idle; `offline` leaves presence alone);
- activity (sending an event, a receipt, typing) sets `last_active`, brings an
  unavailable user back online, and keeps `currently_active` true for a
  minute; explicit offline stays offline;
- an online user with no activity for `idle_after_ms` is unavailable;
- a user with no sync in flight and no sync, activity or update for
  `offline_after_ms` is offline.

The database row holds the presence last *published* on the "presence"
stream: a new position only when what others see changes (state, status
message, `currently_active`), so the last-active time moving while a user is
currently active costs nothing. Activity and sync times are kept in memory
(`_Live`) and written with the next publication, so a busy user's messages
and syncs never touch the presence table. Reads compute presence from the
row and those times at the moment of reading; a sweep every few seconds
publishes the transitions time alone causes (going idle, offline, no longer
currently active) so room-mates' syncs hear about them. After a restart the
first sweep takes every user published as not offline under its watch.

Each publication wakes the long-polls of the user and everyone sharing a room
with them (one query). With `presence.enabled` off, updates are accepted and
ignored, everyone reads as offline and sync carries no presence.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from hearth.clock import Clock
from hearth.config import PresenceConfig
from hearth.errors import forbidden, invalid_param, not_found
from hearth.notifier import Notifier
from hearth.storage.db import Database
from hearth.storage.presence import OFFLINE, PresenceRow, PresenceStore
from hearth.storage.users import UsersStore

log = logging.getLogger(__name__)

ONLINE = "online"
UNAVAILABLE = "unavailable"
STATES = (ONLINE, UNAVAILABLE, OFFLINE)
# After activity a user counts as currently active for this long (presence.md).
CURRENTLY_ACTIVE_MS = 60_000
# Real seconds between sweeps for transitions caused by time alone.
SWEEP_INTERVAL_S = 5.0
MAX_STATUS_MSG_LENGTH = 1024


@dataclass
class _Live:
    """What this process knows about a user beyond their stored row."""

    row: PresenceRow | None = None
    loaded: bool = False  # `row` is the stored row (None: the user has none)
    last_active_ts: int = 0
    last_seen_ts: int = 0
    syncing: int = 0  # syncs in flight


@dataclass(frozen=True, slots=True)
class Effective:
    state: str
    currently_active: bool
    last_active_ts: int


@dataclass(frozen=True, slots=True)
class _Target:
    """What an update asks for: the set state and message, and whether it is activity."""

    state: str
    status_msg: str | None
    active: bool = False


# (stored row or None, presence as it is just before the update) -> target, or None for no change.
_Decide = Callable[[PresenceRow | None, Effective], _Target | None]


class PresenceService:
    def __init__(
        self,
        *,
        db: Database,
        store: PresenceStore,
        users: UsersStore,
        notifier: Notifier,
        clock: Clock,
        config: PresenceConfig,
        server_name: str,
    ) -> None:
        self._db = db
        self._store = store
        self._users = users
        self._notifier = notifier
        self._clock = clock
        self._config = config
        self._local_suffix = ":" + server_name
        self._live: dict[str, _Live] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._restored = False
        self._sweep_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self._config.enabled

    # --- the API ---------------------------------------------------------------------

    async def set_status(self, requester: str, user_id: str, state: str, status_msg: str | None) -> None:
        """PUT /presence/{userId}/status: only for yourself. Replaces the status message."""
        if requester != user_id:
            raise forbidden("Cannot set the presence of another user")
        if state not in STATES:
            raise invalid_param("presence must be one of online, unavailable, offline")
        if status_msg is not None and len(status_msg) > MAX_STATUS_MSG_LENGTH:
            raise invalid_param(f"status_msg must be at most {MAX_STATUS_MSG_LENGTH} characters")
        if not self.enabled:
            return
        self._live_entry(user_id).last_seen_ts = self._clock.time_ms()
        await self._update(user_id, lambda _row, _before: _Target(state, status_msg, active=state == ONLINE),
                           force=True)

    async def get_status(self, requester: str, user_id: str) -> dict[str, Any]:
        """GET /presence/{userId}/status: yours, or that of someone sharing a room with you."""
        if requester != user_id:
            if user_id.endswith(self._local_suffix) and not await self._users.exists(user_id):
                raise not_found("No such user")
            async with self._db.read() as conn:
                if not await self._store.shares_room(conn, requester, user_id):
                    raise forbidden("You are not allowed to see their presence")
        if not self.enabled:
            return {"presence": OFFLINE}
        async with self._db.read() as conn:
            row = await self._store.get(conn, user_id)
        if row is None:
            return {"presence": OFFLINE}
        return self.content(row)

    def syncing(self, user_id: str, set_presence: str | None) -> _Syncing:
        """Around a /sync: mark the user online (or idle) and as connected while it runs."""
        return _Syncing(self, user_id, set_presence)

    async def _sync_started(self, user_id: str, set_presence: str | None) -> _Live | None:
        """Publish what a sync starting changes; the user's live entry, counting the sync."""
        if not self.enabled or set_presence == OFFLINE:
            return None
        wanted = set_presence or ONLINE

        def decide(row: PresenceRow | None, before: Effective) -> _Target | None:
            msg = row.status_msg if row is not None else None
            if wanted == ONLINE and before.state == OFFLINE:
                return _Target(ONLINE, msg, active=True)
            if wanted == UNAVAILABLE and before.state != UNAVAILABLE:
                return _Target(UNAVAILABLE, msg)
            return None

        await self._maybe_update(user_id, decide, syncing=True)
        live = self._live_entry(user_id)
        live.syncing += 1
        live.last_seen_ts = self._clock.time_ms()
        self._arm_sweep()
        return live

    def _sync_ended(self, live: _Live) -> None:
        live.syncing -= 1
        live.last_seen_ts = self._clock.time_ms()

    def note_activity(self, user_id: str) -> None:
        """A local user did something pro-active (sent an event); publish only if others would see it."""
        if not self.enabled or not user_id.endswith(self._local_suffix) or self._closed:
            return
        live = self._live_entry(user_id)
        now = self._clock.time_ms()
        live.last_active_ts = live.last_seen_ts = now
        if live.loaded and self._decide_activity(live.row, self.effective(live.row, now)) is None:
            return
        self._spawn(self._maybe_update(user_id, self._decide_activity))

    async def bump_active(self, user_id: str) -> None:
        """`note_activity`, waiting for any publication (receipts, typing: the request is already here)."""
        if not self.enabled:
            return
        live = self._live_entry(user_id)
        live.last_active_ts = live.last_seen_ts = self._clock.time_ms()
        await self._maybe_update(user_id, self._decide_activity)

    # --- reading --------------------------------------------------------------------

    def effective(self, row: PresenceRow | None, now: int | None = None) -> Effective:
        """Presence at `now` from the stored row and what this process saw since."""
        if now is None:
            now = self._clock.time_ms()
        live = self._live.get(row.user_id) if row is not None else None
        state = row.state if row is not None else OFFLINE
        last_active = max(row.last_active_ts if row else 0, live.last_active_ts if live else 0)
        last_seen = max(row.last_seen_ts if row else 0, live.last_seen_ts if live else 0, last_active)
        syncing = live is not None and live.syncing > 0
        if state == UNAVAILABLE and row is not None and last_active > row.last_active_ts:
            state = ONLINE  # active since it was stored (its publication may be on its way)
        if state != OFFLINE and not syncing and now - last_seen >= self._config.offline_after_ms:
            state = OFFLINE
        elif state == ONLINE and now - last_active >= self._config.idle_after_ms:
            state = UNAVAILABLE
        currently_active = state == ONLINE and now - last_active < CURRENTLY_ACTIVE_MS
        return Effective(state, currently_active, last_active)

    def content(self, row: PresenceRow) -> dict[str, Any]:
        """The content of an m.presence event (and of GET /status) for `row`, now."""
        now = self._clock.time_ms()
        eff = self.effective(row, now)
        content: dict[str, Any] = {"presence": eff.state, "currently_active": eff.currently_active}
        if eff.last_active_ts:
            content["last_active_ago"] = max(0, now - eff.last_active_ts)
        if row.status_msg is not None:
            content["status_msg"] = row.status_msg
        return content

    def current_position(self) -> int:
        return self._store.current_position()

    # --- time-driven transitions ---------------------------------------------------

    async def sweep(self) -> None:
        """Publish what time alone changed (idle, offline, no longer currently active)."""
        if not self.enabled:
            return
        if not self._restored:
            async with self._db.read() as conn:
                stored = await self._store.not_offline(conn)
            for found in stored:
                if found.user_id not in self._live and found.user_id.endswith(self._local_suffix):
                    self._live[found.user_id] = _Live(found, True, found.last_active_ts, found.last_seen_ts)
            self._restored = True
        now = self._clock.time_ms()
        for user_id, live in list(self._live.items()):
            if not live.loaded:
                continue
            eff = self.effective(live.row, now)
            row: PresenceRow | None = live.row
            if row is not None and (eff.state, eff.currently_active) != (row.state, row.currently_active):
                await self._update(user_id, lambda r, before: _Target(
                    before.state, r.status_msg if r is not None else None))
                row = live.row
            if (
                live.syncing == 0
                and (row is None or row.state == OFFLINE)
                and now - live.last_seen_ts >= self._config.offline_after_ms
            ):
                del self._live[user_id]

    async def close(self) -> None:
        self._closed = True
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
            self._sweep_timer = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- internals -------------------------------------------------------------------

    @staticmethod
    def _decide_activity(row: PresenceRow | None, before: Effective) -> _Target | None:
        if row is None or row.state == OFFLINE or before.state == OFFLINE:
            return None  # explicit (or timed-out) offline stays offline
        if row.state == ONLINE and row.currently_active:
            return None  # nothing others see changes; the time stays in memory
        return _Target(ONLINE, row.status_msg, active=True)

    def _live_entry(self, user_id: str) -> _Live:
        live = self._live.get(user_id)
        if live is None:
            live = self._live[user_id] = _Live()
        return live

    async def _maybe_update(self, user_id: str, decide: _Decide, *, syncing: bool = False) -> None:
        """`_update` unless the row this process knows already shows nothing to do."""
        live = self._live_entry(user_id)
        if live.loaded and decide(live.row, self.effective(live.row)) is None:
            return
        await self._update(user_id, decide, syncing=syncing)

    async def _update(self, user_id: str, decide: _Decide, *, syncing: bool = False, force: bool = False
                      ) -> None:
        """Read the row, apply `decide`, store it; publish and wake room-mates if others see a change."""
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        async with lock:
            live = self._live_entry(user_id)
            published = False
            async with self._db.write() as conn:
                row = await self._store.get(conn, user_id, for_update=True)
                now = self._clock.time_ms()
                target = decide(row, self.effective(row, now))
                if target is None and not force:
                    live.row, live.loaded = row, True
                    return
                if target is None:
                    assert row is not None
                    target = _Target(row.state, row.status_msg)
                if target.active:
                    live.last_active_ts = now
                if syncing:
                    live.last_seen_ts = now  # the sync about to start keeps the user connected
                candidate = PresenceRow(
                    user_id=user_id,
                    state=target.state,
                    status_msg=target.status_msg,
                    last_active_ts=max(row.last_active_ts if row else 0, live.last_active_ts),
                    last_seen_ts=max(row.last_seen_ts if row else 0, live.last_seen_ts),
                    currently_active=False,
                    stream_id=row.stream_id if row else 0,
                )
                eff = self.effective(candidate, now)
                candidate = replace(candidate, state=eff.state, currently_active=eff.currently_active)
                published = row is None or (row.state, row.status_msg, row.currently_active) != (
                    candidate.state, candidate.status_msg, candidate.currently_active)
                stream_id = await self._store.put(conn, candidate, publish=published)
            live.row, live.loaded = replace(candidate, stream_id=stream_id), True
        self._arm_sweep()
        if published:
            async with self._db.read() as conn:
                mates = await self._store.room_mates(conn, user_id)
            self._notifier.notify_user(user_id)
            for mate in mates:
                self._notifier.notify_user(mate)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self._logged(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # A task cancelled before it ran (at close) never awaited `coro`: close it quietly.
        task.add_done_callback(lambda _task: coro.close())

    @staticmethod
    async def _logged(coro: Any) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Presence update failed")

    def _arm_sweep(self) -> None:
        if self._sweep_timer is not None or self._closed:
            return
        self._sweep_timer = asyncio.get_running_loop().call_later(SWEEP_INTERVAL_S, self._on_sweep_timer)

    def _on_sweep_timer(self) -> None:
        self._sweep_timer = None

        async def run() -> None:
            try:
                await self.sweep()
            finally:
                if self._live or not self._restored:
                    self._arm_sweep()

        self._spawn(run())


class _Syncing:
    """`PresenceService.syncing`'s context: a slotted object rather than a generator.

    Every parked long-poll holds one for the length of its poll; an
    `asynccontextmanager` would hold a generator, its frame and a wrapper.
    """

    __slots__ = ("_live", "_presence", "_set_presence", "_user_id")

    def __init__(self, presence: PresenceService, user_id: str, set_presence: str | None) -> None:
        self._presence, self._user_id, self._set_presence = presence, user_id, set_presence
        self._live: _Live | None = None

    async def __aenter__(self) -> None:
        self._live = await self._presence._sync_started(self._user_id, self._set_presence)

    async def __aexit__(self, *exc: object) -> None:
        if self._live is not None:
            self._presence._sync_ended(self._live)
